"""Creates every DynamoDB table from the same PynamoDB models that the deployment declares,
and the photos bucket."""

from __future__ import annotations

from chalicelib.adapters.dynamo.models import ALL_MODELS


def create_tables() -> list[str]:
    """Every table that is missing: one ListTables, then a CreateTable each (moto's tables are
    ACTIVE at once: no waiting, no DescribeTable; every integration test pays for this)."""
    import boto3

    from chalicelib.config import settings

    dynamodb = boto3.client("dynamodb", region_name=settings().region)
    existing = {
        name
        for page in dynamodb.get_paginator("list_tables").paginate()
        for name in page["TableNames"]
    }
    created = []
    for model in ALL_MODELS:
        if model.Meta.table_name not in existing:
            model.create_table(billing_mode="PAY_PER_REQUEST")
        created.append(model.Meta.table_name)
    return created


def create_photos_bucket() -> str:
    """The profile photos' bucket the settings name (the template's, in the local stack)."""
    import boto3

    from chalicelib.config import settings

    name = settings().photos_bucket
    s3 = boto3.client("s3", region_name=settings().region)
    if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=name)
    return name
