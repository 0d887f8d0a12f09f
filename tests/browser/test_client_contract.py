"""The reference web client knows the whole protocol: every error code has a sentence for people,
and every message Salon sends is handled (or deliberately ignored). No browser needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_JS = (ROOT / "web" / "app.js").read_text()


def messages_block() -> set[str]:
    block = re.search(r"const MESSAGES = \{(.*?)\n\};", APP_JS, re.S)
    assert block, "web/app.js has no MESSAGES table"
    return set(re.findall(r"^\s+([a-z][a-z0-9_]*):", block.group(1), re.M))


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / "docs" / name).read_text())


def test_every_error_code_of_the_protocol_has_a_message_in_the_client() -> None:
    codes = {entry["code"] for entry in load("openapi.yaml")["x-error-codes"]}
    assert codes - messages_block() == set(), "codes with no sentence in web/app.js MESSAGES"


def test_every_room_error_code_has_a_message_in_the_client() -> None:
    room_codes = set(load("asyncapi.yaml")["components"]["schemas"]["RoomErrorCode"]["enum"])
    assert room_codes - messages_block() == set()


def test_every_message_salon_sends_is_known_to_the_client() -> None:
    schemas = load("asyncapi.yaml")["components"]["schemas"]
    types = {
        schema["properties"]["type"]["const"]
        for schema in schemas.values()
        if isinstance(schema.get("properties", {}).get("type"), dict)
        and "const" in schema["properties"]["type"]
    }
    assert types, "no message types found in docs/asyncapi.yaml"
    unknown = {t for t in types if f"'{t}'" not in APP_JS}
    assert unknown == set(), "server messages web/app.js neither handles nor lists"


def test_the_client_is_plain_files_with_no_build_step() -> None:
    web = ROOT / "web"
    assert {p.name for p in web.iterdir()} >= {"index.html", "app.js", "style.css"}
    html = (web / "index.html").read_text()
    assert '<script src="app.js"' in html and 'href="style.css"' in html
    assert "import " not in APP_JS.split("*/", 1)[1][:2000], "no modules to bundle"
