"""Money rules as properties: what refunds take back of a tip, whatever the split and order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.money import (
    AmountBelowMinimumError,
    TipPolicy,
    quote,
    refund_share,
    share,
    usd,
)


@st.composite
def refunded_charge(draw: st.DrawFn) -> tuple[int, int, list[int], bool]:
    """(charge cents, tip cents, refunds in the order they are recorded, fully refunded?)"""
    charge = draw(st.integers(min_value=50, max_value=200_000))
    tip = draw(st.integers(min_value=1, max_value=charge))
    left, refunds = charge, []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        if left == 0:
            break
        part = draw(st.integers(min_value=1, max_value=left))
        refunds.append(part)
        left -= part
    full = draw(st.booleans())
    if full and left:
        refunds.append(left)
    return charge, tip, draw(st.permutations(refunds)), sum(refunds) == charge


@given(refunded_charge())
def test_refunds_take_back_the_share_of_their_total_whatever_the_split_and_order(
    case: tuple[int, int, list[int], bool],
) -> None:
    charge, tip, refunds, full = case
    before, taken = 0, 0
    for cents in refunds:
        part = refund_share(before, cents, charge, tip)
        assert part >= 0
        taken += part
        before += cents
    assert taken == share(before, charge, tip)
    assert taken <= tip
    if full:
        assert taken == tip  # a tip refunded in full nets exactly 0


def test_a_refund_share_rounds_half_up() -> None:
    assert refund_share(0, 273, 546, 500) == 250
    assert refund_share(273, 273, 546, 500) == 250


def test_amounts_read_as_dollars() -> None:
    assert [usd(c) for c in (0, 5, 150, 100_000, -250)] == [
        "$0.00",
        "$0.05",
        "$1.50",
        "$1,000.00",
        "-$2.50",
    ]


def test_the_tip_minimum_is_said_in_dollars() -> None:
    with pytest.raises(AmountBelowMinimumError) as refused:
        quote(99, TipPolicy(min_cents=150))
    assert refused.value.message == "Tips start at $1.50."
