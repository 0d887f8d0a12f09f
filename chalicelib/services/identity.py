"""Identity use cases: sign in by phone, invitations, sign-up, sessions, profiles and follows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo.identity import BLOCKS, FOLLOWS, IdentityRepository
from chalicelib.adapters.dynamo.paging import Page
from chalicelib.adapters.sms import Sms
from chalicelib.adapters.tokens import TokenIssuer
from chalicelib.config import Settings
from chalicelib.domain.errors import NotAuthenticatedError, RateLimitedError
from chalicelib.domain.identity import (
    CodeExpiredError,
    CodeLockedError,
    MemberStatus,
    NotInvitedError,
    PendingCode,
    PhoneStatus,
    Profile,
    RefreshToken,
    SelfRelationError,
    SessionRevokedError,
    SuspendedError,
    WrongCodeError,
    address_group,
    code_digest,
    derived_secret,
    keyed_digest,
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
        self.limit(f"sign-in:phone:{phone}", now, self.settings.sign_in_starts_per_phone_per_hour)
        self.limit(
            f"sign-in:ip:{address_group(source_ip)}",
            now,
            self.settings.sign_in_starts_per_ip_per_hour,
        )
        ttl = self._send_code(phone, now, "is your Salon code.")
        logger.info("sign-in code sent")  # never the code, never the number
        return {"phone": phone, "expires_in": ttl}

    def _send_code(self, phone: str, now: datetime, what: str, after: str = "") -> int:
        """Store a new code for the number (replacing any other) and text it; its TTL."""
        code = new_code()
        ttl = self.settings.sign_in_code_ttl_s
        self.repo.put_code(
            self._code_ref(phone),
            code_digest(self.code_key(), phone, code),
            now + timedelta(seconds=ttl),
        )
        self.sms.send(phone, f"{code} {what} It expires in {ttl // 60} minutes.{after}")
        return ttl

    def limit(self, what: str, now: datetime, per_hour: int) -> None:
        """Count one start in this hour's window of `what`, stored under a keyed hash: the
        limits table never holds a phone number or an address."""
        window = now.replace(minute=0, second=0, microsecond=0)
        key = keyed_digest(self.code_key(), "rate-limit", what)
        hits = self.repo.hit(f"{key}:{window:%Y%m%d%H}", window + timedelta(hours=2))
        if hits > per_hour:
            raise RateLimitedError("Too many codes requested; try again within the hour.")

    def send_confirmation_code(self, user_id: str) -> dict[str, Any]:
        """Text the member a fresh code that confirms a grave step (deleting the account):
        a stolen access token alone cannot take it. Counted like sign-in codes."""
        profile = self._active(user_id)
        now = self.clock()
        self.limit(
            f"sign-in:phone:{profile.phone}", now, self.settings.sign_in_starts_per_phone_per_hour
        )
        ttl = self._send_code(
            profile.phone,
            now,
            "is your Salon code to delete your account.",
            " If you did not ask for it, ignore this message.",
        )
        return {"expires_in": ttl}

    def confirm_code(self, user_id: str, code: str) -> None:
        """Spend the member's pending code once, or refuse (wrong, expired, locked, used)."""
        phone = self.repo.profile(user_id).phone
        ref = self._code_ref(phone)
        max_attempts = self.settings.sign_in_max_attempts
        now = self.clock()
        pending = self.repo.code(ref)
        if pending is None or pending.expires_at <= now or pending.used_at is not None:
            raise CodeExpiredError()
        if pending.attempts >= max_attempts:
            raise CodeLockedError()
        if not self.repo.count_attempt(ref, pending.digest, max_attempts):
            raise CodeLockedError()
        if not same_digest(code_digest(self.code_key(), phone, code), pending.digest):
            left = max_attempts - pending.attempts - 1
            raise WrongCodeError(f"That code is not right; {left} attempts left.")
        if not self.repo.consume_code(ref, pending.digest, now):
            raise CodeExpiredError()  # a parallel request spent it first

    def code_ref(self, phone: str) -> str:
        return self._code_ref(phone)

    def _code_ref(self, phone: str) -> str:
        return keyed_digest(self.code_key(), "sign-in-code", phone)

    def verify_code(self, raw_phone: str, code: str) -> dict[str, Any]:
        """Sign in with the code sent by SMS.

        Every submission spends one of the code's attempts before the comparison. The right
        code signs in once; submitted again within `retry_grace_s` of that (a double tap, a
        retry after a lost answer) it gets the same answer, the same session and tokens, not
        a refusal. Any other code for a used one, or the right one later, is `code_expired`.
        """
        phone = normalize_phone(raw_phone)
        now = self.clock()
        ref = self._code_ref(phone)
        max_attempts = self.settings.sign_in_max_attempts
        pending = self.repo.code(ref)
        if pending is None or pending.expires_at <= now:
            raise CodeExpiredError()
        if pending.attempts >= max_attempts:
            raise CodeLockedError()
        if not self.repo.count_attempt(ref, pending.digest, max_attempts):
            latest = self.repo.code(ref)
            if latest is not None and latest.digest == pending.digest:
                raise CodeLockedError()  # parallel submissions spent the last attempts
            raise CodeExpiredError()  # a new code replaced it
        if not same_digest(code_digest(self.code_key(), phone, code), pending.digest):
            if pending.used_at is not None:
                raise CodeExpiredError()
            left = max_attempts - pending.attempts - 1
            raise WrongCodeError(f"That code is not right; {left} attempts left.")
        if pending.used_at is None and self.repo.consume_code(ref, pending.digest, now):
            return self._after_verification(phone, pending, now)
        if not self._within_grace(self._used_at(ref, pending), now):
            raise CodeExpiredError()
        return self._after_verification(phone, pending, now)

    def _used_at(self, ref: str, pending: PendingCode) -> datetime | None:
        if pending.used_at is not None:
            return pending.used_at
        latest = self.repo.code(ref)  # a parallel submission of the same code used it first
        same = latest is not None and latest.digest == pending.digest
        return latest.used_at if latest is not None and same else None

    def _within_grace(self, since: datetime | None, now: datetime) -> bool:
        return since is not None and now <= since + timedelta(seconds=self.settings.retry_grace_s)

    def _after_verification(
        self, phone: str, pending: PendingCode, now: datetime
    ) -> dict[str, Any]:
        """What a verified number gets. The same for every submission of one right code: a
        member's session is derived from the code, so a retry finds the one already opened."""
        record = self.repo.phone(phone)
        if record is not None and record.status is PhoneStatus.MEMBER and record.user_id:
            profile = self._active(record.user_id)
            key = self.code_key()
            # The code's digest and expiry name this one issuance of it, never an earlier one.
            issued = f"{pending.digest}:{pending.expires_at.isoformat()}"
            session_id = keyed_digest(key, "session", issued)[:32]
            refresh = RefreshToken(session_id, derived_secret(key, "session", session_id))
            return {
                "status": "member",
                **self._open_session(profile.user_id, now, refresh),
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

    def _open_session(
        self, user_id: str, now: datetime, refresh: RefreshToken | None = None
    ) -> dict[str, Any]:
        """Open a session. Given a derived refresh token, opening it again (a retried sign-in)
        answers the same tokens while the session still has that first secret."""
        refresh = refresh or RefreshToken.new(self.new_id())
        digest = secret_digest(refresh.secret)
        created = self.repo.create_session(
            refresh.session_id, user_id, digest, now, self.settings.refresh_token_ttl_s
        )
        if not created:
            existing = self.repo.session(refresh.session_id, now)
            if (
                existing is None
                or existing.user_id != user_id
                or not same_digest(existing.secret_digest, digest)
            ):
                raise CodeExpiredError()  # that sign-in was used and has moved on
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

        The next refresh token is derived from the one presented, so parallel or retried
        refreshes of one token all get the same next token. Within `retry_grace_s` of a
        rotation, the token it replaced answers that same next token again; presenting it
        later, or any older token, means it leaked: the whole session is revoked.
        """
        now = self.clock()
        presented = RefreshToken.parse(raw_refresh_token)
        successor = presented.successor(self.code_key())
        for _ in range(2):
            session = self.repo.session(presented.session_id, now)
            if session is None:
                raise SessionRevokedError()
            if same_digest(secret_digest(presented.secret), session.secret_digest):
                self._active(session.user_id)
                new_digest = secret_digest(successor.secret)
                if self.repo.rotate(presented.session_id, session.secret_digest, new_digest, now):
                    return self._tokens(session.user_id, successor, now)
                continue  # a parallel refresh rotated it first: read what it left
            retried = same_digest(secret_digest(successor.secret), session.secret_digest)
            if retried and self._within_grace(session.rotated_at, now):
                self._active(session.user_id)
                return self._tokens(session.user_id, successor, now)
            self.repo.revoke(presented.session_id)
            logger.warning(
                "refresh token reused; session revoked", extra={"user_id": session.user_id}
            )
            raise SessionRevokedError()
        raise SessionRevokedError()

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
        if session.user_id != claims.user_id:
            raise NotAuthenticatedError()
        self._active(claims.user_id)
        return claims.user_id, claims.session_id

    def _active(self, user_id: str) -> Profile:
        profile = self.repo.profile(user_id)
        if profile.suspended(self.clock()):
            raise SuspendedError()
        if profile.status is MemberStatus.SUSPENDED:  # a suspension for a period has ended
            self.repo.set_status(user_id, MemberStatus.ACTIVE)
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
        if user_id == target_id:
            raise SelfRelationError()
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
        if user_id == target_id:
            raise SelfRelationError()
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

    def set_status(
        self, user_id: str, status: MemberStatus, until: datetime | None = None
    ) -> dict[str, Any]:
        self.repo.set_status(user_id, status, until)
        answer: dict[str, Any] = {"user_id": user_id, "status": status.value}
        if until is not None:
            answer["suspended_until"] = until.isoformat()
        return answer
