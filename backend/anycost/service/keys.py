"""CURVE keys for a daemon reachable beyond loopback (ZeroMQ's authenticated encryption)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import cast

from anycost.core.errors import AnycostError


def make_keys(folder: Path, force: bool = False) -> dict[str, Path]:
    """A server pair and a first client pair; the client's public key is authorised."""
    import zmq.auth

    folder.mkdir(parents=True, exist_ok=True)
    existing = folder / "server.key_secret"
    if existing.exists() and not force:
        raise AnycostError(f"keys already exist in {folder} (use --force to replace them)")
    authorized = folder / "authorized"
    authorized.mkdir(exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(str(folder), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(folder), "client")
    shutil.copy(client_public, authorized / "client.key")
    for p in (server_secret, client_secret):
        Path(p).chmod(0o600)
    return {"server_public": Path(server_public), "server_secret": Path(server_secret),
            "client_public": Path(client_public), "client_secret": Path(client_secret),
            "authorized": authorized}


def load_server_keys(folder: Path) -> dict:
    import zmq.auth

    secret = folder / "server.key_secret"
    if not secret.is_file():
        raise AnycostError(f"no server keys in {folder}: run `anycost-backend keys` first")
    public, secret_key = zmq.auth.load_certificate(str(secret))
    return {"public": public, "secret": secret_key, "authorized": folder / "authorized"}


def load_client_keys(folder: Path) -> tuple[bytes, tuple[bytes, bytes]]:
    """(server public key, (client public, client secret)) for a client on this machine."""
    import zmq.auth

    server_public, _ = zmq.auth.load_certificate(str(folder / "server.key"))
    client = zmq.auth.load_certificate(str(folder / "client.key_secret"))
    return server_public, cast("tuple[bytes, bytes]", client)   # a .key_secret file: the secret is there
