"""The embedded AWS refuses a browser upload that breaks its POST policy, as S3 does (moto
alone stores anything): local/s3_post_policy.py, driven with boto3's own presigned POSTs."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.s3_post_policy import MotoServer

BUCKET = "policy-test-photos"
KEY = "photos/u1/a.png"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    server = MotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def form(s3: Any, expires_in: int = 300, key: str = KEY) -> dict[str, Any]:
    post: dict[str, Any] = s3.generate_presigned_post(
        BUCKET,
        key,
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 1000]],
        ExpiresIn=expires_in,
    )
    return post


def send(url: str, fields: dict[str, str], data: bytes) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=b"".join(parts),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def stored(s3: Any, key: str = KEY) -> bool:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)
    return any(o["Key"] == key for o in listed.get("Contents", []))


def test_an_upload_the_policy_allows_is_stored_with_its_type(s3: Any) -> None:
    post = form(s3)
    assert send(post["url"], post["fields"], b"\x89PNG....")[0] == 204
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == "image/png"
    s3.delete_object(Bucket=BUCKET, Key=KEY)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"size": 1001}, 400, "EntityTooLarge"),
        ({"size": 0}, 400, "EntityTooSmall"),
        ({"Content-Type": "image/svg+xml"}, 403, "AccessDenied"),
        ({"key": "photos/someone-else/a.png"}, 403, "AccessDenied"),
        ({"success_action_status": "201"}, 403, "AccessDenied"),  # a field no condition covers
        ({"expires_in": -5}, 403, "AccessDenied"),
    ],
    ids=["too-large", "empty", "other-type", "other-key", "extra-field", "expired"],
)
def test_an_upload_that_breaks_the_policy_is_refused_and_not_stored(
    s3: Any, change: dict[str, Any], status: int, code: str
) -> None:
    post = form(s3, expires_in=int(change.pop("expires_in", 300)))
    size = int(change.pop("size", 10))
    fields = {**post["fields"], **change}
    answer = send(post["url"], fields, b"x" * size)
    assert answer[0] == status and f"<Code>{code}</Code>" in answer[1], answer
    assert not stored(s3) and not stored(s3, fields["key"])
