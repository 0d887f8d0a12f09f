"""Profile photos on moto's S3: the upload form's limits, the photo shown everywhere a member is,
and the objects deleted when a photo is replaced or removed, or the account erased.

moto does not enforce a POST policy's conditions, so the form's policy document is checked
here as S3 would read it; and Salon itself re-checks what was uploaded before showing it.
What the client's upload does, these tests do with PutObject (the browser test posts the form).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.config import settings
from tests.support.crowd import Crowd
from tests.support.fakes import RecordingConnections
from tests.support.flows import post
from tests.support.photos import auth, keys, start, upload, use


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def test_the_upload_form_allows_one_key_one_image_type_and_at_most_the_size_cap(
    crowd: Crowd, client: Client
) -> None:
    ann = crowd.person("ann")
    started = start(client, ann, "image/png")
    fields = started["upload"]["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": started["key"]} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, settings().photo_max_bytes] in conditions
    assert {"bucket": settings().photos_bucket} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= settings().photo_upload_ttl_s
    assert started["key"].startswith(f"photos/{ann.user_id}/")
    assert started["key"].endswith(".png")
    assert fields["Content-Type"] == "image/png" and fields["key"] == started["key"]
    assert started["max_bytes"] == 5 * 1024 * 1024


def test_only_jpeg_png_and_webp_get_an_upload_form(crowd: Crowd, client: Client) -> None:
    ann = crowd.person("ann")
    for refused in ("image/gif", "text/html", "image/svg+xml"):
        answer = post(client, "/me/photo/uploads", {"content_type": refused}, auth(ann))
        assert answer.status_code == 400
        assert answer.json_body["error"]["field"] == "content_type"


def test_an_uploaded_photo_shows_on_the_profile_the_stage_and_the_hallway(
    crowd: Crowd, client: Client
) -> None:
    host, fan = crowd.person("host"), crowd.person("fan")
    key = upload(host, client)
    answer = use(client, host, key)
    assert answer.status_code == 200, answer.json_body
    url = f"{settings().photos_url}/{key}"
    assert answer.json_body["photo_url"] == url
    seen = client.http.get(f"/users/{host.user_id}", headers=auth(fan)).json_body
    assert seen["photo_url"] == url
    room = host.ok("create_room", title="Photos", kind="open")
    joined = fan.ok("join_room", room_id=room["room_id"])
    assert [s["photo_url"] for s in joined["stage"]] == [url]
    hallway = client.http.get("/rooms", headers=auth(fan)).json_body
    assert [p["photo_url"] for r in hallway["items"] for p in r["stage"]] == [url]


def test_a_replaced_photo_is_deleted_from_the_bucket(crowd: Crowd, client: Client) -> None:
    ann = crowd.person("ann")
    first = upload(ann, client)
    assert use(client, ann, first).status_code == 200
    second = upload(ann, client)
    assert use(client, ann, second).status_code == 200
    assert keys() == {second}


def test_an_upload_the_form_would_have_refused_is_deleted_and_not_shown(
    crowd: Crowd, client: Client
) -> None:
    ann = crowd.person("ann")
    for body, content_type in (
        (b"<svg onload=alert(1)>", "image/svg+xml"),
        (b"\0" * (settings().photo_max_bytes + 1), ""),
    ):
        key = upload(ann, client, body, content_type)
        answer = use(client, ann, key)
        assert (answer.status_code, answer.json_body["error"]["code"]) == (400, "invalid_photo")
        assert key not in keys()
    assert client.http.get("/me", headers=auth(ann)).json_body["photo_url"] == ""


def test_nobody_can_take_someone_elses_upload_or_a_key_never_uploaded(
    crowd: Crowd, client: Client
) -> None:
    ann, bob = crowd.person("ann"), crowd.person("bob")
    key = upload(ann, client)
    for who, what in ((bob, key), (ann, f"photos/{ann.user_id}/never.jpg"), (ann, "../x")):
        answer = use(client, who, what)
        assert (answer.status_code, answer.json_body["error"]["code"]) == (400, "invalid_photo")
    assert key in keys()


def test_removing_the_photo_or_pointing_it_elsewhere_deletes_the_object(
    crowd: Crowd, client: Client
) -> None:
    ann = crowd.person("ann")
    assert use(client, ann, upload(ann, client)).status_code == 200
    removed = client.http.delete("/me/photo", headers=auth(ann))
    assert (removed.status_code, removed.json_body["photo_url"]) == (200, "")
    assert keys() == set()

    assert use(client, ann, upload(ann, client)).status_code == 200
    outside = "https://example.com/me.jpg"
    edited = client.http.patch(
        "/me",
        body=json.dumps({"photo_url": outside, "bio": "hi"}),
        headers={"Content-Type": "application/json", **auth(ann)},
    )
    assert (edited.json_body["photo_url"], edited.json_body["bio"]) == (outside, "hi")
    assert keys() == set()


def test_erasing_a_member_deletes_their_photo(crowd: Crowd, client: Client, svc: Any) -> None:
    ann = crowd.person("ann")
    assert use(client, ann, upload(ann, client)).status_code == 200
    svc.photos.erase(ann.user_id)
    assert keys() == set()
    svc.photos.erase("0" * 32)  # nobody: nothing to do
