"""The SMS outbox of the embedded AWS: what moto's SNS 'sent', newest first per phone number."""

from __future__ import annotations

import re

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

CODE = re.compile(r"\b(\d{6})\b")


def messages(phone: str, region: str = "us-east-1") -> list[str]:
    backend = sns_backends[DEFAULT_ACCOUNT_ID][region]
    return [text for number, text in reversed(backend.sms_messages.values()) if number == phone]


def latest_code(phone: str, region: str = "us-east-1") -> str | None:
    for text in messages(phone, region):
        match = CODE.search(text)
        if match:
            return match.group(1)
    return None
