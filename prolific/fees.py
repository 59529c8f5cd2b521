"""What Prolific charges on top of rewards and bonuses: its service fee, a share of each payment (0.333
by default, Prolific's academic rate before VAT; other accounts set their own: the Prolific crowd
adapter passes settings.PROLIFIC_FEE_RATE). The publish plan prefers Prolific's own cost calculator
where it answers."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
DEFAULT_RATE = Decimal("0.333")


def with_fee(amount: Decimal, rate: Decimal = DEFAULT_RATE) -> Decimal:
    """A reward or bonus with Prolific's fee on it."""
    return (amount * (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
