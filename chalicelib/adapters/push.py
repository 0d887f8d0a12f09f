"""Mobile push through Amazon SNS platform applications (APNs and FCM)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.aws import LazyClient
from chalicelib.domain.errors import UnavailableError, ValidationError
from chalicelib.domain.notifications import Platform, Push

# What SNS answers when the platform has told it the token is dead (uninstalled, expired).
GONE_CODES = frozenset({"EndpointDisabled", "NotFound"})


class PushGateway:
    """Endpoints are created in the platform application the settings name (one per
    platform); a push is one Publish to one endpoint."""

    def __init__(self, region: str, applications: dict[Platform, str]) -> None:
        self._applications = applications
        self._sns = LazyClient("sns", region)

    def create_endpoint(self, platform: Platform, token: str) -> str:
        application = self._applications.get(platform)
        if not application:
            raise ValidationError("Push to that platform is not set up here.", field="platform")
        try:
            arn = str(
                self._sns().create_platform_endpoint(
                    PlatformApplicationArn=application, Token=token
                )["EndpointArn"]
            )
            # SNS returns the existing endpoint for a known token, possibly disabled by an
            # earlier failure: registering again is the app saying the token works.
            self._sns().set_endpoint_attributes(
                EndpointArn=arn, Attributes={"Enabled": "true", "Token": token}
            )
        except ClientError as exc:
            if _code(exc) == "InvalidParameter":
                raise ValidationError("That device token is not valid.", field="token") from exc
            raise UnavailableError("Push could not be set up; try again.") from exc
        except BotoCoreError as exc:
            raise UnavailableError("Push could not be set up; try again.") from exc
        return arn

    def endpoint_enabled(self, endpoint_arn: str) -> bool | None:
        """Whether SNS will deliver to the endpoint now; None when it no longer exists."""
        try:
            attributes = self._sns().get_endpoint_attributes(EndpointArn=endpoint_arn)
        except ClientError as exc:
            if _code(exc) == "NotFound":
                return None
            raise
        return str(attributes.get("Attributes", {}).get("Enabled", "")).lower() == "true"

    def delete_endpoint(self, endpoint_arn: str) -> None:
        self._sns().delete_endpoint(EndpointArn=endpoint_arn)

    def publish(self, endpoint_arn: str, push: Push) -> bool:
        """Send it; False when SNS says the endpoint is gone (the caller forgets it)."""
        try:
            self._sns().publish(
                TargetArn=endpoint_arn,
                MessageStructure="json",
                Message=json.dumps(payload(push), separators=(",", ":")),
            )
        except ClientError as exc:
            if _code(exc) in GONE_CODES:
                return False
            raise
        return True


def payload(push: Push) -> dict[str, str]:
    """One message per platform, as SNS mobile push wants it (MessageStructure=json)."""
    data = {"kind": push.kind.value, **push.data}
    apns = json.dumps({"aps": {"alert": {"title": push.title, "body": push.body}}, **data})
    gcm = json.dumps({"notification": {"title": push.title, "body": push.body}, "data": data})
    return {"default": push.body, "APNS": apns, "APNS_SANDBOX": apns, "GCM": gcm}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
