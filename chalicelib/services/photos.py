"""Profile photos: a presigned upload, then the uploaded image becomes the member's photo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.dynamo.identity import IdentityRepository
from chalicelib.adapters.photos import PhotoStore
from chalicelib.domain.identity import MemberNotFoundError
from chalicelib.domain.photos import (
    InvalidPhotoError,
    PhotoRules,
    check_uploaded,
    owned_by,
    photo_key,
)


class Photos:
    def __init__(
        self,
        store: PhotoStore,
        people: IdentityRepository,
        rules: PhotoRules,
        new_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.people = people
        self.rules = rules
        self.new_id = new_id

    def start_upload(self, user_id: str, content_type: str) -> dict[str, Any]:
        """Where and how the client uploads the file itself (S3 checks type and size)."""
        key = photo_key(user_id, self.new_id(), content_type)
        form = self.store.upload_form(
            key, content_type, self.rules.max_bytes, self.rules.upload_ttl_s
        )
        return {
            "key": key,
            "upload": {"url": form["url"], "fields": form["fields"]},
            "max_bytes": self.rules.max_bytes,
            "content_types": ["image/jpeg", "image/png", "image/webp"],
            "expires_in": self.rules.upload_ttl_s,
        }

    def use(self, user_id: str, key: str) -> dict[str, Any]:
        """The uploaded image becomes the member's photo; the one it replaces is deleted."""
        if not owned_by(key, user_id):
            raise InvalidPhotoError("That key is not one of your uploads.", field="key")
        size, content_type = self.store.stat(key)
        try:
            check_uploaded(size, content_type, self.rules)
        except InvalidPhotoError:
            if size is not None:
                self.store.delete(key)  # nobody may keep what the form would have refused
            raise
        self._replace(user_id, self.store.url(key), key)
        return self.people.profile(user_id).private()

    def remove(self, user_id: str) -> dict[str, Any]:
        self._replace(user_id, "", None)
        return self.people.profile(user_id).private()

    def use_url(self, user_id: str, url: str) -> None:
        """PATCH /me's `photo_url` (an outside URL, or "" for none) replaces Salon's object."""
        self._replace(user_id, url, None)

    def erase(self, user_id: str) -> None:
        """For account deletion: the member's photo object goes (their row goes elsewhere)."""
        try:
            key = self.people.set_photo(user_id, "", None)
        except MemberNotFoundError:
            return  # already gone, and their photo with them
        if key:
            self.store.delete(key)

    def _replace(self, user_id: str, url: str, key: str | None) -> None:
        old = self.people.set_photo(user_id, url, key)
        if old and old != key:
            self.store.delete(old)
