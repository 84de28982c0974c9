"""Putting the backend where users meet it: the editors' plug-ins (plugins) and a systemd user unit."""
