"""Identity use cases: sign in by phone, invitations, sign-up, sessions, profiles and follows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo.identity import BLOCKS, FOLLOWS, IdentityRepository, Page
from chalicelib.adapters.sms import Sms
from chalicelib.adapters.tokens import TokenIssuer
from chalicelib.config import Settings
from chalicelib.domain.errors import NotAuthenticatedError, RateLimitedError
from chalicelib.domain.identity import (
    CodeExpiredError,
    CodeLockedError,
    MemberStatus,
    NotInvitedError,
    PhoneStatus,
    Profile,
    RefreshToken,
    SelfRelationError,
    SessionRevokedError,
    SuspendedError,
    WrongCodeError,
    code_digest,
    new_code,
    normalize_phone,
    normalize_username,
    same_digest,
    secret_digest,
)

logger = logging.getLogger("salon.identity")


@dataclass
class Identity:
    repo: IdentityRepository
    tokens: TokenIssuer
    sms: Sms
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    code_key: Callable[[], str]

    # --- sign-in ------------------------------------------------------------------------

    def start_sign_in(self, raw_phone: str, source_ip: str) -> dict[str, Any]:
        phone = normalize_phone(raw_phone)
        now = self.clock()
        self._limit(f"sign-in:phone:{phone}", now, self.settings.sign_in_starts_per_phone_per_hour)
        self._limit(f"sign-in:ip:{source_ip}", now, self.settings.sign_in_starts_per_ip_per_hour)
        code = new_code()
        ttl = self.settings.sign_in_code_ttl_s
        self.repo.put_code(
            phone, code_digest(self.code_key(), phone, code), now + timedelta(seconds=ttl)
        )
        self.sms.send(phone, f"{code} is your Salon code. It expires in {ttl // 60} minutes.")
        logger.info("sign-in code sent")  # never the code, never the number
        return {"phone": phone, "expires_in": ttl}

    def _limit(self, key: str, now: datetime, per_hour: int) -> None:
        window = now.replace(minute=0, second=0, microsecond=0)
        hits = self.repo.hit(f"{key}:{window:%Y%m%d%H}", window + timedelta(hours=2))
        if hits > per_hour:
            raise RateLimitedError("Too many codes requested; try again within the hour.")

    def verify_code(self, raw_phone: str, code: str) -> dict[str, Any]:
        phone = normalize_phone(raw_phone)
        now = self.clock()
        pending = self.repo.code(phone)
        if pending is None or pending[2] <= now:
            raise CodeExpiredError()
        stored, attempts, _ = pending
        if attempts >= self.settings.sign_in_max_attempts:
            raise CodeLockedError()
        self.repo.count_attempt(phone, stored, self.settings.sign_in_max_attempts)
        if not same_digest(code_digest(self.code_key(), phone, code), stored):
            left = self.settings.sign_in_max_attempts - attempts - 1
            raise WrongCodeError(f"That code is not right; {left} attempts left.")
        if not self.repo.consume_code(phone, stored):
            raise CodeExpiredError()
        return self._after_verification(phone, now)

    def _after_verification(self, phone: str, now: datetime) -> dict[str, Any]:
        record = self.repo.phone(phone)
        if record is not None and record.status is PhoneStatus.MEMBER and record.user_id:
            profile = self._active(record.user_id)
            return {
                "status": "member",
                **self._open_session(profile.user_id, now),
                "user": profile.private(),
            }
        if record is None:
            self.repo.waitlist(phone, now)
            record = self.repo.phone(phone)
        assert record is not None
        answer: dict[str, Any] = {
            "status": record.status.value,
            "sign_up_token": self.tokens.issue_sign_up(phone, now),
            "reserved_username": record.reserved_username,
            "invited_by": None,
        }
        if record.status is PhoneStatus.INVITED and record.invited_by:
            answer["invited_by"] = self._summary(record.invited_by)
        return answer

    def sign_up(self, sign_up_token: str, name: str, raw_username: str) -> dict[str, Any]:
        now = self.clock()
        phone = self.tokens.verify_sign_up(sign_up_token, now)
        record = self.repo.phone(phone)
        if record is None or record.status is PhoneStatus.WAITLISTED:
            raise NotInvitedError()
        profile = self.repo.redeem(
            phone,
            self.new_id(),
            normalize_username(raw_username),
            name,
            self.settings.invites_per_member,
            now,
        )
        logger.info("member joined", extra={"user_id": profile.user_id})
        return {
            "status": "member",
            **self._open_session(profile.user_id, now),
            "user": profile.private(),
        }

    def reserve_username(self, sign_up_token: str, raw_username: str) -> dict[str, Any]:
        now = self.clock()
        phone = self.tokens.verify_sign_up(sign_up_token, now)
        username = normalize_username(raw_username)
        self.repo.reserve_username(phone, username, now)
        return {"status": "waitlisted", "reserved_username": username}

    # --- sessions -----------------------------------------------------------------------

    def _open_session(self, user_id: str, now: datetime) -> dict[str, Any]:
        refresh = RefreshToken.new(self.new_id())
        self.repo.create_session(
            refresh.session_id,
            user_id,
            secret_digest(refresh.secret),
            now,
            self.settings.refresh_token_ttl_s,
        )
        return self._tokens(user_id, refresh, now)

    def _tokens(self, user_id: str, refresh: RefreshToken, now: datetime) -> dict[str, Any]:
        access, expires_at = self.tokens.issue(user_id, refresh.session_id, now)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_at - int(now.timestamp()),
            "refresh_token": str(refresh),
        }

    def refresh(self, raw_refresh_token: str) -> dict[str, Any]:
        """Trade a refresh token for new tokens; the old refresh token stops working.

        Presenting an already-rotated secret means it leaked: the whole session is revoked.
        """
        now = self.clock()
        presented = RefreshToken.parse(raw_refresh_token)
        session = self.repo.session(presented.session_id, now)
        if session is None:
            raise SessionRevokedError()
        user_id, stored = session
        if not same_digest(secret_digest(presented.secret), stored):
            self.repo.revoke(presented.session_id)
            logger.warning("refresh token reused; session revoked", extra={"user_id": user_id})
            raise SessionRevokedError()
        self._active(user_id)
        rotated = RefreshToken.new(presented.session_id)
        self.repo.rotate(presented.session_id, stored, secret_digest(rotated.secret))
        return self._tokens(user_id, rotated, now)

    def sign_out(self, user_id: str, session_id: str) -> None:
        self.repo.revoke(session_id)
        logger.info("signed out", extra={"user_id": user_id})

    def authenticate(self, access_token: str) -> str:
        return self.authenticate_session(access_token)[0]

    def authenticate_session(self, access_token: str) -> tuple[str, str]:
        """(user id, session id) for a valid token of a live session of an active member."""
        now = self.clock()
        claims = self.tokens.verify(access_token, now)
        session = self.repo.session(claims.session_id, now)
        if session is None:
            raise SessionRevokedError()
        if session[0] != claims.user_id:
            raise NotAuthenticatedError()
        self._active(claims.user_id)
        return claims.user_id, claims.session_id

    def _active(self, user_id: str) -> Profile:
        profile = self.repo.profile(user_id)
        if profile.status is MemberStatus.SUSPENDED:
            raise SuspendedError()
        return profile

    # --- invitations --------------------------------------------------------------------

    def invite(self, inviter_id: str, raw_phone: str) -> dict[str, Any]:
        phone = normalize_phone(raw_phone)
        inviter = self._active(inviter_id)
        left = self.repo.invite(inviter_id, phone, self.clock())
        self.sms.send(
            phone,
            f"{inviter.name} (@{inviter.username}) invited you to Salon. Sign in with "
            "this number to join.",
        )
        return {"phone": phone, "status": PhoneStatus.INVITED.value, "invites_left": left}

    # --- profiles -----------------------------------------------------------------------

    def _summary(self, user_id: str) -> dict[str, Any] | None:
        profiles = self.repo.profiles([user_id])
        if user_id not in profiles:
            return None
        p = profiles[user_id]
        return {
            "user_id": p.user_id,
            "username": p.username,
            "name": p.name,
            "photo_url": p.photo_url,
        }

    def me(self, user_id: str) -> dict[str, Any]:
        profile = self.repo.profile(user_id)
        invited_by = self._summary(profile.invited_by) if profile.invited_by else None
        return {**profile.private(), "invited_by": invited_by}

    def profile(self, viewer_id: str, user_id: str) -> dict[str, Any]:
        profile = self.repo.profile(user_id)
        invited_by = self._summary(profile.invited_by) if profile.invited_by else None
        return {
            **profile.public(),
            "invited_by": invited_by,
            "you_follow": self.repo.relation_exists(viewer_id, FOLLOWS + user_id),
            "follows_you": self.repo.relation_exists(user_id, FOLLOWS + viewer_id),
        }

    def profile_by_username(self, viewer_id: str, raw_username: str) -> dict[str, Any]:
        user_id = self.repo.user_id_for_username(normalize_username(raw_username))
        return self.profile(viewer_id, user_id)

    def update_profile(self, user_id: str, changes: dict[str, str]) -> dict[str, Any]:
        self.repo.update_profile(user_id, changes)
        return self.me(user_id)

    # --- follows and blocks -------------------------------------------------------------

    def follow(self, user_id: str, target_id: str) -> dict[str, Any]:
        if user_id == target_id:
            raise SelfRelationError()
        self.repo.profile(target_id)  # a clear 404 for nobody
        self.repo.follow(user_id, target_id, self.clock())
        return {"user_id": target_id, "you_follow": True}

    def unfollow(self, user_id: str, target_id: str) -> dict[str, Any]:
        self.repo.unfollow(user_id, target_id)
        return {"user_id": target_id, "you_follow": False}

    def block(self, user_id: str, target_id: str) -> dict[str, Any]:
        if user_id == target_id:
            raise SelfRelationError()
        self.repo.profile(target_id)
        self.repo.block(user_id, target_id, self.clock())
        # A block ends the follows both ways, so neither sees the other in their lists.
        self.repo.unfollow(target_id, user_id)
        self.repo.unfollow(user_id, target_id)
        return {"user_id": target_id, "blocked": True}

    def unblock(self, user_id: str, target_id: str) -> dict[str, Any]:
        self.repo.unblock(user_id, target_id)
        return {"user_id": target_id, "blocked": False}

    def followers(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        self.repo.profile(user_id)
        return self._people(self.repo.incoming(user_id, FOLLOWS, limit, cursor))

    def following(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        self.repo.profile(user_id)
        return self._people(self.repo.outgoing(user_id, FOLLOWS, limit, cursor))

    def blocked(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        return self._people(self.repo.outgoing(user_id, BLOCKS, limit, cursor))

    def _people(self, page: Page) -> dict[str, Any]:
        profiles = self.repo.profiles(page.items)
        items = [profiles[i].public() for i in page.items if i in profiles]
        return {"items": items, "cursor": page.cursor}

    # --- operators ----------------------------------------------------------------------

    def create_founder(
        self, raw_phone: str, name: str, raw_username: str, invites: int
    ) -> dict[str, Any]:
        profile = self.repo.create_founder(
            self.new_id(),
            normalize_phone(raw_phone),
            normalize_username(raw_username),
            name,
            invites,
            self.clock(),
        )
        return profile.private()

    def grant_invites(self, user_id: str, count: int) -> dict[str, Any]:
        return {"user_id": user_id, "invites_left": self.repo.grant_invites(user_id, count)}

    def admit(self, raw_phone: str) -> dict[str, Any]:
        phone = normalize_phone(raw_phone)
        self.repo.invite(None, phone, self.clock())
        self.sms.send(phone, "You're in: Salon has a place for you. Sign in with this number.")
        return {"phone": phone, "status": PhoneStatus.INVITED.value}

    def set_status(self, user_id: str, status: MemberStatus) -> dict[str, Any]:
        self.repo.set_status(user_id, status)
        return {"user_id": user_id, "status": status.value}
