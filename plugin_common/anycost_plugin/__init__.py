"""What the editor plugins share and that needs no GUI toolkit: pixel bookkeeping, starting the
backend. Pure Python (no torch, no numpy); `install-plugin` copies it into each plugin's vendor
folder, next to the backend's protocol and client modules."""
