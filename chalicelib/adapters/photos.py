"""Profile photos in S3: presigned POST forms for uploads, and the objects' sizes and types."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError


class PhotoStore:
    """One bucket; photos are read at `public_url`/key (the bucket's, or a CDN in front)."""

    def __init__(self, bucket: str, public_url: str, region: str) -> None:
        self.bucket = bucket
        self.public_url = public_url.rstrip("/")
        self.region = region

    @cached_property
    def _s3(self) -> Any:
        return boto3.client("s3", region_name=self.region)

    def upload_form(
        self, key: str, content_type: str, max_bytes: int, expires_in: int
    ) -> dict[str, Any]:
        """A form the client posts the file with: S3 refuses another key, another type, or a
        file larger than `max_bytes`, and the form expires after `expires_in` seconds."""
        form: dict[str, Any] = self._s3.generate_presigned_post(
            self.bucket,
            key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return form

    def stat(self, key: str) -> tuple[int | None, str | None]:
        """(size, content type) of an uploaded photo, (None, None) when there is none."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None, None
            raise
        return int(head["ContentLength"]), head.get("ContentType")

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str) -> str:
        return f"{self.public_url}/{key}"
