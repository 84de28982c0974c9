"""Parsing of the option values shared by several commands (one clear error each)."""
from __future__ import annotations

import argparse
import sys

from anycost.core.errors import AnycostError


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit code 2, like every other user error."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def parse_channels(text: str | None):
    """'0.5' -> 0.5 (uniform ratio); '512,512,256,...' -> per-layer widths; None -> full."""
    if text is None:
        return None
    text = text.strip()
    try:
        if "," in text:
            return [int(v) for v in text.split(",") if v.strip()]
        return float(text)
    except ValueError:
        raise AnycostError(f"--channels takes a ratio in (0, 1] or a comma-separated list of widths, "
                           f"got {text!r}") from None


def parse_int_list(text: str, option: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AnycostError(f"{option} takes comma-separated integers, got {text!r}") from None


def parse_float_list(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AnycostError(f"{option} takes comma-separated numbers, got {text!r}") from None
