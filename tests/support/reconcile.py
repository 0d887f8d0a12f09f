"""Reconciliation in tests: Salon's ledger against the Stripe emulator, around now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def differences(services: Any) -> list[dict[str, Any]]:
    """What `admin_reconcile` reports for the hour around now. `services` is the container
    or a Program (whose Stripe and ledger it then uses)."""
    from chalicelib.services.program import Pacer
    from chalicelib.services.reconcile import Reconciliation

    if not hasattr(services, "reconciliation"):
        services = _Of(Reconciliation(services.money, services.stripe, Pacer(1000.0), _now))
    now = datetime.now(UTC)
    report = services.reconciliation.run(now - timedelta(hours=1), now + timedelta(minutes=5))
    found: list[dict[str, Any]] = report["differences"]
    return found


def assert_reconciled(services: Any) -> None:
    assert differences(services) == []


def _now() -> datetime:
    return datetime.now(UTC)


class _Of:
    def __init__(self, reconciliation: Any) -> None:
        self.reconciliation = reconciliation
