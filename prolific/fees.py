"""What Prolific charges on top of rewards and bonuses: its service fee, a share of each payment
(PROLIFIC_FEE_RATE; 0.333 by default, Prolific's academic rate before VAT; other accounts set their
own). The publish plan prefers Prolific's own cost calculator where it answers."""

from __future__ import annotations

import os
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def fee_rate() -> Decimal:
    return Decimal(os.environ.get("PROLIFIC_FEE_RATE") or "0.333")


def with_fee(amount: Decimal) -> Decimal:
    """A reward or bonus with Prolific's fee on it."""
    return (amount * (1 + fee_rate())).quantize(CENT, rounding=ROUND_HALF_UP)
