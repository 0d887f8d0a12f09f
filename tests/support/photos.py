"""Profile photo steps the integration tests share: the presigned upload (done with PutObject,
as the client's form would), using the upload, and the bucket's keys."""

from __future__ import annotations

import json
from typing import Any

import boto3
from chalice.test import Client

from chalicelib.config import settings
from tests.support.crowd import Person
from tests.support.flows import post

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 200


def s3() -> Any:
    return boto3.client("s3", region_name="us-east-1")


def keys() -> set[str]:
    listed = s3().list_objects_v2(Bucket=settings().photos_bucket)
    return {o["Key"] for o in listed.get("Contents", [])}


def auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


def start(client: Client, person: Person, content_type: str = "image/jpeg") -> dict[str, Any]:
    answer = post(client, "/me/photo/uploads", {"content_type": content_type}, auth(person))
    assert answer.status_code == 201, answer.json_body
    started: dict[str, Any] = answer.json_body
    return started


def upload(person: Person, client: Client, body: bytes = JPEG, content_type: str = "") -> str:
    started = start(client, person)
    fields = started["upload"]["fields"]
    s3().put_object(
        Bucket=settings().photos_bucket,
        Key=started["key"],
        Body=body,
        ContentType=content_type or fields["Content-Type"],
    )
    return str(started["key"])


def use(client: Client, person: Person, key: str) -> Any:
    return client.http.put(
        "/me/photo",
        body=json.dumps({"key": key}),
        headers={"Content-Type": "application/json", **auth(person)},
    )
