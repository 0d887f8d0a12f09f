"""Creator program fixtures the integration tests share: enrolled creators with Stripe accounts
in the emulator, the month they are paid for, and the transfers Stripe holds for them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe

from chalicelib.domain.program import Enrollment
from chalicelib.services.program import Program
from tests.support.stripe_local import emulator_post

MONTH = "2026-12"


def forever() -> int:
    return 900_000


def creators(
    program: Program, emulator: str, count: int, *, ready: bool = True, prefix: str = "creator"
) -> list[str]:
    """Enrolled creators with Stripe accounts, onboarded or not."""
    ids = []
    for i in range(count):
        user_id = f"{prefix}{i:04d}"
        state = program.stripe.create_account(user_id)
        if ready:
            emulator_post(emulator, f"/_test/accounts/{state.account_id}/complete_onboarding")
            state = program.stripe.account(state.account_id)
        program.money.save_account(user_id, state, datetime.now(UTC))
        program.repo.add_enrollment(Enrollment.new(user_id, 500_000, MONTH, 3), datetime.now(UTC))
        ids.append(user_id)
    return ids


def transfers_to(emulator: str, user_id: str) -> list[Any]:
    sdk = stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})
    return list(
        sdk.v1.transfers.list(
            params={"transfer_group": f"stipend-{user_id}-{MONTH}", "limit": 10}
        ).data
    )
