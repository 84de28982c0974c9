#!/usr/bin/env bash
# A Debian 13 (trixie) root with GIMP 3 and Krita 5.2 and their Python, for the editor plug-ins'
# real tests on a Debian 12 machine (which ships only GIMP 2.10 and Krita 5.1). Built once (about
# 2-8 minutes, needs root and the Debian mirror), then reused: the root is kept at
# $ANYCOST_GIMP_ROOT (default /var/cache/anycost/trixie-gimp3). Prints the root's path.
set -euo pipefail
ROOT=${ANYCOST_GIMP_ROOT:-/var/cache/anycost/trixie-gimp3}
STAMP="$ROOT/.anycost-ready"
if [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/krita" ]; then echo "$ROOT"; exit 0; fi
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
command -v debootstrap >/dev/null || { $SUDO apt-get update -qq; $SUDO apt-get install -y -qq debootstrap >/dev/null; }
$SUDO mkdir -p "$ROOT"
[ -x "$ROOT/usr/bin/apt-get" ] || $SUDO debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian >&2
$SUDO cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mountpoint -q "$ROOT/proc" || $SUDO mount -t proc proc "$ROOT/proc"
trap '$SUDO umount "$ROOT/proc" 2>/dev/null || true' EXIT
$SUDO chroot "$ROOT" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
    gimp gir1.2-gegl-0.4 python3-gi python3-zmq python3-msgpack krita python3-pyqt5 >&2
$SUDO chroot "$ROOT" apt-get clean
$SUDO touch "$STAMP"
echo "$ROOT"
