"""Sizes for messages, one way everywhere."""

from __future__ import annotations


def size_text(bits: int) -> str:
    """A data size in bits as bytes, KiB or MiB for a message: ``2.25 MiB``."""
    size = bits / 8
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:,.4g} {unit}"
    return f"{size:,.0f} B"
