"""Short-lived access tokens: signed JWTs that name a member and the session they belong to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import NotAuthenticatedError

ALGORITHM = "HS256"
ISSUER = "salon"
ACCESS = "access"
SIGN_UP = "sign_up"
SIGN_UP_TTL_S = 30 * 60


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: int


class TokenIssuer:
    """Issues and verifies access tokens. The secret is asked for lazily, on first use."""

    def __init__(self, secret: Callable[[], str], ttl_s: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, user_id: str, session_id: str, now: datetime) -> tuple[str, int]:
        import jwt  # here, not at the top: WebSocket message Lambdas never load it (~40 ms)

        issued_at = int(now.timestamp())
        expires_at = issued_at + self._ttl_s
        claims = {
            "iss": ISSUER,
            "typ": ACCESS,
            "sub": user_id,
            "sid": session_id,
            "iat": issued_at,
            "exp": expires_at,
        }
        return jwt.encode(claims, self._secret(), algorithm=ALGORITHM), expires_at

    def verify(self, token: str, now: datetime) -> AccessClaims:
        claims = self._decode(token, ACCESS, now, ["sid"])
        return AccessClaims(str(claims["sub"]), str(claims["sid"]), int(claims["exp"]))

    def issue_sign_up(self, phone: str, now: datetime) -> str:
        """Proof that a phone number passed its code: lets it sign up or join the waitlist."""
        import jwt

        issued_at = int(now.timestamp())
        claims = {
            "iss": ISSUER,
            "typ": SIGN_UP,
            "sub": phone,
            "iat": issued_at,
            "exp": issued_at + SIGN_UP_TTL_S,
        }
        return jwt.encode(claims, self._secret(), algorithm=ALGORITHM)

    def verify_sign_up(self, token: str, now: datetime) -> str:
        return str(self._decode(token, SIGN_UP, now, [])["sub"])

    def _decode(self, token: str, kind: str, now: datetime, required: list[str]) -> dict[str, Any]:
        import jwt

        # A JWT is ASCII: anything else (a lone surrogate cannot even be encoded) is no token.
        if not token.isascii():
            raise NotAuthenticatedError()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret(),
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", *required], "verify_exp": False},
            )
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticatedError() from exc
        # Expiry is checked against the injected clock, not the machine's, so tests control time.
        if claims.get("typ") != kind or int(claims["exp"]) <= int(now.timestamp()):
            raise NotAuthenticatedError()
        return claims
