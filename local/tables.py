"""Creates every DynamoDB table from the same PynamoDB models that the deployment declares."""

from __future__ import annotations

from chalicelib.adapters.dynamo.models import ALL_MODELS


def create_tables() -> list[str]:
    created = []
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        created.append(model.Meta.table_name)
    return created
