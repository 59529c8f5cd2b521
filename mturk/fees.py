"""What Mechanical Turk charges: the worker's reward plus MTurk's commission on it (20%, or 40% for
HITs with 10 or more assignments), at least one cent per assignment. Plain Decimal arithmetic."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MIN_FEE = Decimal("0.01")


def commission_rate(max_assignments: int) -> Decimal:
    return Decimal("0.40") if max_assignments >= 10 else Decimal("0.20")


def assignment_cost(reward: Decimal, max_assignments: int) -> Decimal:
    """What one approved assignment costs the requester: reward plus commission."""
    fee = max(MIN_FEE, (reward * commission_rate(max_assignments)).quantize(CENT, rounding=ROUND_HALF_UP))
    return reward + fee


def bonus_cost(amount: Decimal) -> Decimal:
    """Bonuses carry a 20% commission whatever the HIT's assignment count."""
    return amount + max(MIN_FEE, (amount * Decimal("0.20")).quantize(CENT, rounding=ROUND_HALF_UP))
