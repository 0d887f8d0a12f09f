"""Text messages through Amazon SNS."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import LazyClient
from chalicelib.domain.errors import UnavailableError


class Sms:
    def __init__(self, region: str, sender_id: str = "Salon") -> None:
        self._sender_id = sender_id
        self._sns = LazyClient("sns", region)

    def send(self, phone: str, text: str) -> None:
        try:
            self._publish(phone, text)
        except (BotoCoreError, ClientError) as exc:
            raise UnavailableError("The text message could not be sent; try again.") from exc

    def _publish(self, phone: str, text: str) -> None:
        self._sns().publish(
            PhoneNumber=phone,
            Message=text,
            MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": self._sender_id},
            },
        )
