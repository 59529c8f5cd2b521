"""Argument types the commands share: numbers that must be finite and within a range, so `nan`, `inf`
or `1e999` get argparse's clear "argument --x: ..." message instead of reaching the work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def bounded_float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number from {low:g} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse
