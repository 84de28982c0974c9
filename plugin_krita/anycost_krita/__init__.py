"""Anycost Editor for Krita: a docker with live attribute sliders (see docs/krita-plugin.md).

Inside Krita this registers the docker; imported elsewhere (tests, the installer) it does nothing,
so the editor-independent modules (connection, controller, pixels, settings) can be used alone.
"""
import os
import sys

# what `anycost-backend install-plugin` puts beside the plugin: the backend's protocol and client
# (a minimal `anycost` package), the shared `anycost_plugin`, and pyzmq/msgpack when Krita lacks them
_VENDOR = os.path.join(os.path.dirname(__file__), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.append(_VENDOR)

try:
    import krita as _krita
    _IN_KRITA = hasattr(_krita, "Krita") and not getattr(_krita, "IS_MOCK", False)
except ImportError:
    _IN_KRITA = False

if _IN_KRITA:
    import importlib
    importlib.import_module(".extension", __name__)    # registers the docker
