"""Profile photos: which images Salon takes, how big, and where each member's live."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.errors import ValidationError

# What browsers and phones produce and every client can show; the file extension of each.
PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
PREFIX = "photos/"


class InvalidPhotoError(ValidationError):
    code = "invalid_photo"
    default_message = "Photos are JPEG, PNG or WebP images of at most 5 MB."


@dataclass(frozen=True)
class PhotoRules:
    max_bytes: int = 5 * 1024 * 1024
    upload_ttl_s: int = 300


def photo_key(user_id: str, upload_id: str, content_type: str) -> str:
    """Each upload gets a key of its own: a replaced photo's old URL never shows the new one."""
    if content_type not in PHOTO_TYPES:
        raise InvalidPhotoError(
            "Photos are JPEG, PNG or WebP images (image/jpeg, image/png, image/webp).",
            field="content_type",
        )
    return f"{PREFIX}{user_id}/{upload_id}.{PHOTO_TYPES[content_type]}"


def owned_by(key: str, user_id: str) -> bool:
    return (
        key.startswith(f"{PREFIX}{user_id}/") and "/" not in key[len(PREFIX) + len(user_id) + 1 :]
    )


def check_uploaded(size: int | None, content_type: str | None, rules: PhotoRules) -> None:
    """What S3 holds must be what the upload form allowed (an emulator may not enforce it)."""
    if size is None:
        raise InvalidPhotoError("Nothing was uploaded under that key yet.", field="key")
    if content_type not in PHOTO_TYPES:
        raise InvalidPhotoError("That upload is not a JPEG, PNG or WebP image.", field="key")
    if not 0 < size <= rules.max_bytes:
        raise InvalidPhotoError(
            f"Photos are at most {rules.max_bytes // (1024 * 1024)} MB.", field="key"
        )
