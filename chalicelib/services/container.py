"""Wires the services together once per Lambda container, on first use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.connections import ConnectionRepository
from chalicelib.adapters.secrets import jwt_secret
from chalicelib.adapters.tokens import TokenIssuer
from chalicelib.config import Settings, settings
from chalicelib.edge.websocket import Realtime


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Collaborators built on first use, so a cold start builds only what its request touches."""

    settings: Settings

    @cached_property
    def tokens(self) -> TokenIssuer:
        return TokenIssuer(lambda: jwt_secret(self.settings), self.settings.access_token_ttl_s)

    @cached_property
    def poster(self) -> Connections:
        return Connections(self.settings.management_url, self.settings.region)

    @cached_property
    def connections(self) -> ConnectionRepository:
        return ConnectionRepository(self.settings.connection_ttl_s)

    @cached_property
    def realtime(self) -> Realtime:
        return Realtime(
            self, self.connections, self.poster, utc_now, self.settings.max_ws_message_bytes
        )

    def authenticate(self, access_token: str) -> str:
        """The member an access token speaks for; raises NotAuthenticatedError."""
        return self.tokens.verify(access_token, utc_now()).user_id


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(settings())
