"""What every other layer of `anycost` may use and which uses none of them: timing and the machine's
identity (timing.py), and the one way measurements of this machine are kept on disk
(measurements.py)."""
