"""Members, phone numbers, usernames, sign-in codes, sessions and the social graph in DynamoDB.

Every rule that must hold under concurrency (an invitation redeemed once, a username held once,
an inviter's count never below zero) is a condition on the write that changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import (
    DeleteError,
    PutError,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo.models import (
    PhoneModel,
    RateLimitModel,
    RelationModel,
    SessionModel,
    SignInCodeModel,
    UserModel,
    UsernameModel,
)
from chalicelib.adapters.dynamo.paging import Page, decode_cursor, read_page
from chalicelib.adapters.dynamo.tx import condition_failed, transaction
from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.domain.identity import (
    AlreadyInvitedError,
    AlreadyMemberError,
    BlockedError,
    MemberNotFoundError,
    MemberStatus,
    NoInvitesLeftError,
    NotInvitedError,
    PendingCode,
    PhoneRecord,
    PhoneStatus,
    Profile,
    ReservationBusyError,
    SessionState,
    SuspendedError,
    UsernameTakenError,
)

FOLLOWS = "follows#"
# The holder of a deleted member's username while it is quarantined (never a phone number).
QUARANTINED = "quarantined"
BLOCKS = "blocks#"
# Each failed try means another reservation of the same number won in between, so ten tries
# see ten concurrent reservations of one number through.
RESERVATION_TRIES = 10


def _conflicted(error: TransactWriteError) -> bool:
    """Whether DynamoDB cancelled a transaction because another one was writing the same item."""
    reasons = error.cancellation_reasons or []
    return any(reason is not None and reason.code == "TransactionConflict" for reason in reasons)


class PhotoChangedError(ConflictError):
    default_message = "Your photo changed at the same moment. Please try again."


def _profile(row: UserModel) -> Profile:
    return Profile(
        user_id=row.user_id,
        username=row.username,
        name=row.name,
        bio=row.bio or "",
        photo_url=row.photo_url or "",
        invited_by=row.invited_by,
        followers_count=int(row.followers_count or 0),
        following_count=int(row.following_count or 0),
        created_at=row.created_at,
        status=MemberStatus(row.status),
        phone=row.phone,
        invites_left=int(row.invites_left or 0),
        suspended_until=row.suspended_until,
    )


class IdentityRepository:
    # --- phones and invitations ---------------------------------------------------------

    def phone(self, phone: str) -> PhoneRecord | None:
        try:
            row = PhoneModel.get(phone, consistent_read=True)
        except PhoneModel.DoesNotExist:
            return None
        return PhoneRecord(
            row.phone, PhoneStatus(row.status), row.invited_by, row.user_id, row.reserved_username
        )

    def waitlist(self, phone: str, at: datetime) -> None:
        """Put an unknown number on the waitlist; a number Salon already knows keeps its state."""
        try:
            PhoneModel(phone, status=PhoneStatus.WAITLISTED.value, waitlisted_at=at).save(
                condition=PhoneModel.phone.does_not_exist()
            )
        except PutError as error:
            if not condition_failed(error):
                raise

    def invite(self, inviter_id: str | None, phone: str, at: datetime) -> int | None:
        """Invite a number, spending one of the inviter's invitations in the same transaction.

        `inviter_id` None is an operator's admission, which costs nobody anything.
        Returns the inviter's invitations left.
        """
        phone_free = PhoneModel.phone.does_not_exist() | (
            PhoneModel.status == PhoneStatus.WAITLISTED.value
        )
        invite = PhoneModel(phone)
        invite_actions: list[Action] = [
            PhoneModel.status.set(PhoneStatus.INVITED.value),
            PhoneModel.invited_at.set(at),
        ]
        if inviter_id is not None:
            invite_actions.append(PhoneModel.invited_by.set(inviter_id))
        try:
            with (tx := transaction()):
                tx.update(invite, actions=invite_actions, condition=phone_free)
                if inviter_id is not None:
                    tx.update(
                        UserModel(inviter_id),
                        actions=[UserModel.invites_left.add(-1)],
                        condition=(UserModel.invites_left > 0)
                        & (UserModel.status == MemberStatus.ACTIVE.value),
                    )
        except TransactWriteError as error:
            # An operator's admission is a one-action transaction: no inviter to blame.
            phone_failed, *inviter = tx.failed(error)
            inviter_failed = bool(inviter and inviter[0])
            if phone_failed:
                current = self.phone(phone)
                if current is not None and current.status is PhoneStatus.MEMBER:
                    raise AlreadyMemberError() from error
                raise AlreadyInvitedError() from error
            if inviter_failed:
                profile = self.profile(inviter_id or "")
                if profile.status is MemberStatus.SUSPENDED:
                    raise SuspendedError() from error
                raise NoInvitesLeftError() from error
            raise
        if inviter_id is None:
            return None
        return self.profile(inviter_id).invites_left

    def redeem(
        self,
        phone: str,
        user_id: str,
        username: str,
        name: str,
        invites: int,
        at: datetime,
    ) -> Profile:
        """Turn an invited number into a member, exactly once, holding the username once; the
        name the number reserved, if another, is released in the same transaction."""
        for _ in range(2):
            try:
                return self._redeem(phone, user_id, username, name, invites, at)
            except UsernameTakenError:
                if not self._release_if_orphaned(username):
                    raise
        raise UsernameTakenError(field="username")

    def _redeem(
        self,
        phone: str,
        user_id: str,
        username: str,
        name: str,
        invites: int,
        at: datetime,
    ) -> Profile:
        claim_free = UsernameModel.username.does_not_exist() | (UsernameModel.phone == phone)
        current = self.phone(phone)
        old_reservation = current.reserved_username if current else None
        try:
            with (tx := transaction()):
                tx.update(
                    PhoneModel(phone),
                    actions=[
                        PhoneModel.status.set(PhoneStatus.MEMBER.value),
                        PhoneModel.user_id.set(user_id),
                        PhoneModel.reserved_username.remove(),
                    ],
                    condition=PhoneModel.status == PhoneStatus.INVITED.value,
                )
                tx.save(
                    UsernameModel(username, user_id=user_id, phone=phone, claimed_at=at),
                    condition=claim_free,
                )
                tx.save(
                    UserModel(
                        user_id,
                        phone=phone,
                        username=username,
                        name=name,
                        invited_by=current.invited_by if current else None,
                        invites_left=invites,
                        status=MemberStatus.ACTIVE.value,
                        created_at=at,
                    ),
                    condition=UserModel.user_id.does_not_exist(),
                )
                if old_reservation and old_reservation != username:
                    tx.delete(
                        UsernameModel(old_reservation),
                        condition=UsernameModel.phone == phone,
                    )
        except TransactWriteError as error:
            phone_failed, username_failed, *_ = tx.failed(error)
            if phone_failed:
                latest = self.phone(phone)
                if latest is not None and latest.status is PhoneStatus.MEMBER:
                    raise AlreadyMemberError("This number has already joined.") from error
                raise NotInvitedError() from error
            if username_failed:
                raise UsernameTakenError(field="username") from error
            raise
        return self.profile(user_id)

    def reserve_username(self, phone: str, username: str, at: datetime) -> None:
        """A waitlisted number holds one username until it is admitted; reserving another
        releases the first in the same transaction.

        The write is conditioned on the reservation it read: when another request of the same
        number changed it in between, this one reads again and replaces that one, so the
        number ends up holding the name of the last request, and only that one.
        """
        not_its_own: set[str] = set()  # names the number pointed at that another held
        for _ in range(RESERVATION_TRIES):
            current = self.phone(phone)
            if current is None or current.status is not PhoneStatus.WAITLISTED:
                raise ValidationError(
                    "Only waitlisted numbers reserve usernames.", field="username"
                )
            previous = current.reserved_username
            if previous == username:
                return
            unchanged = (
                PhoneModel.reserved_username.does_not_exist()
                if previous is None
                else PhoneModel.reserved_username == previous
            )
            try:
                with (tx := transaction()):
                    tx.save(
                        UsernameModel(username, phone=phone, claimed_at=at),
                        condition=UsernameModel.username.does_not_exist(),
                    )
                    tx.update(
                        PhoneModel(phone),
                        actions=[PhoneModel.reserved_username.set(username)],
                        condition=(PhoneModel.status == PhoneStatus.WAITLISTED.value) & unchanged,
                    )
                    if previous and previous not in not_its_own:
                        tx.delete(
                            UsernameModel(previous),
                            condition=(UsernameModel.phone == phone)
                            & UsernameModel.user_id.does_not_exist(),
                        )
            except TransactWriteError as error:
                name_failed, phone_failed, *release = tx.failed(error)
                if phone_failed or _conflicted(error):
                    continue  # the number changed under this request: read it again
                if name_failed:
                    if self._release_if_orphaned(username) or self._reserves(phone, username):
                        continue  # free again, or a double tap of this number got it first
                    raise UsernameTakenError(field="username") from error
                if release and release[0] and previous:
                    not_its_own.add(previous)
                    continue
                raise
            return
        raise ReservationBusyError(field="username")

    def _reserves(self, phone: str, username: str) -> bool:
        current = self.phone(phone)
        return current is not None and current.reserved_username == username

    def _release_if_orphaned(self, username: str) -> bool:
        """Release a reservation that its number no longer points at, as double taps left
        before reservations were conditioned on the number. True if the name may be free."""
        try:
            claim = UsernameModel.get(username, consistent_read=True)
        except UsernameModel.DoesNotExist:
            return True
        if claim.user_id is not None:
            return False
        if claim.phone == QUARANTINED:
            until = claim.quarantined_until
            if until is not None and until > datetime.now(UTC):
                return False  # a deleted member's name, still held
        holder = self.phone(claim.phone)
        if holder is not None and holder.reserved_username == username:
            return False
        try:
            UsernameModel(username).delete(
                condition=UsernameModel.user_id.does_not_exist()
                & (UsernameModel.phone == claim.phone)
                & (UsernameModel.claimed_at == claim.claimed_at)
            )
        except DeleteError as error:
            if not condition_failed(error):
                raise
        return True

    # --- members --------------------------------------------------------------------------

    def profile(self, user_id: str) -> Profile:
        try:
            return _profile(UserModel.get(user_id))
        except UserModel.DoesNotExist as exc:
            raise MemberNotFoundError() from exc

    def stages_of(self, user_ids: Iterable[str]) -> dict[str, set[str]]:
        """The rooms each of `user_ids` is on stage in (a BatchGetItem per 100, projected)."""
        ids = list(dict.fromkeys(user_ids))
        rows = UserModel.batch_get(ids, attributes_to_get=["user_id", "on_stage_in"]) if ids else []
        return {row.user_id: set(row.on_stage_in) for row in rows if row.on_stage_in}

    def profiles(self, user_ids: Iterable[str]) -> dict[str, Profile]:
        ids = list(dict.fromkeys(user_ids))
        return {row.user_id: _profile(row) for row in UserModel.batch_get(ids)} if ids else {}

    def user_id_for_username(self, username: str) -> str:
        try:
            claim = UsernameModel.get(username)
        except UsernameModel.DoesNotExist as exc:
            raise MemberNotFoundError() from exc
        if claim.user_id is None:
            raise MemberNotFoundError()
        return claim.user_id

    def update_profile(self, user_id: str, changes: dict[str, str]) -> Profile:
        attributes = {
            "name": UserModel.name,
            "bio": UserModel.bio,
            "photo_url": UserModel.photo_url,
        }
        actions: list[Action] = [attributes[key].set(value) for key, value in changes.items()]
        if actions:
            try:
                UserModel(user_id).update(actions=actions, condition=UserModel.user_id.exists())
            except UpdateError as error:
                if condition_failed(error):
                    raise MemberNotFoundError() from error
                raise
        return self.profile(user_id)

    def set_photo(self, user_id: str, url: str, key: str | None) -> str | None:
        """Show `url` (Salon's object `key`, or none) as the member's photo; returns the key of
        the photo it replaced, which the caller deletes. Conditioned on that key, so two
        replacements at once cannot both think they replaced the same photo."""
        try:
            old = UserModel.get(
                user_id, consistent_read=True, attributes_to_get=["user_id", "photo_key"]
            )
        except UserModel.DoesNotExist as exc:
            raise MemberNotFoundError() from exc
        before = old.photo_key
        unchanged = (
            UserModel.photo_key.does_not_exist()
            if before is None
            else UserModel.photo_key == before
        )
        actions: list[Action] = [
            UserModel.photo_url.set(url),
            UserModel.photo_key.set(key) if key else UserModel.photo_key.remove(),
        ]
        try:
            UserModel(user_id).update(
                actions=actions, condition=UserModel.user_id.exists() & unchanged
            )
        except UpdateError as error:
            if condition_failed(error):
                raise PhotoChangedError() from error
            raise
        return before

    def create_founder(
        self, user_id: str, phone: str, username: str, name: str, invites: int, at: datetime
    ) -> Profile:
        """The first member, who needs nobody's invitation. Refused if the number is known."""
        try:
            with (tx := transaction()):
                tx.save(
                    PhoneModel(phone, status=PhoneStatus.MEMBER.value, user_id=user_id),
                    condition=PhoneModel.phone.does_not_exist(),
                )
                tx.save(
                    UsernameModel(username, user_id=user_id, phone=phone, claimed_at=at),
                    condition=UsernameModel.username.does_not_exist(),
                )
                tx.save(
                    UserModel(
                        user_id,
                        phone=phone,
                        username=username,
                        name=name,
                        invites_left=invites,
                        status=MemberStatus.ACTIVE.value,
                        created_at=at,
                    ),
                    condition=UserModel.user_id.does_not_exist(),
                )
        except TransactWriteError as error:
            phone_failed, username_failed, *_ = tx.failed(error)
            if phone_failed:
                raise AlreadyMemberError() from error
            if username_failed:
                raise UsernameTakenError(field="username") from error
            raise
        return self.profile(user_id)

    def grant_invites(self, user_id: str, count: int) -> int:
        try:
            UserModel(user_id).update(
                actions=[UserModel.invites_left.add(count)], condition=UserModel.user_id.exists()
            )
        except UpdateError as error:
            if condition_failed(error):
                raise MemberNotFoundError() from error
            raise
        return self.profile(user_id).invites_left

    def set_status(self, user_id: str, status: MemberStatus, until: datetime | None = None) -> None:
        """Set a member's standing; a suspension `until` a time ends by itself then."""
        until_action = (
            UserModel.suspended_until.set(until) if until else UserModel.suspended_until.remove()
        )
        try:
            UserModel(user_id).update(
                actions=[UserModel.status.set(status.value), until_action],
                condition=UserModel.user_id.exists(),
            )
        except UpdateError as error:
            if condition_failed(error):
                raise MemberNotFoundError() from error
            raise

    # --- sign-in codes and rate limits ------------------------------------------------------

    def put_code(self, ref: str, digest: str, expires_at: datetime) -> None:
        """Store the number's new code (replacing any other). `ref` is a keyed hash of the
        number: the table never holds the number itself."""
        SignInCodeModel(
            ref, code_hash=digest, attempts=0, expires_at=expires_at, ttl=expires_at
        ).save()

    def code(self, ref: str) -> PendingCode | None:
        try:
            row = SignInCodeModel.get(ref, consistent_read=True)
        except SignInCodeModel.DoesNotExist:
            return None
        return PendingCode(row.code_hash, int(row.attempts), row.expires_at, row.used_at)

    def count_attempt(self, ref: str, digest: str, max_attempts: int) -> bool:
        """Spend one attempt on the current code before comparing, so racing guesses can't
        exceed the limit. False if the attempts are spent or the code is no longer this one."""
        try:
            SignInCodeModel(ref).update(
                actions=[SignInCodeModel.attempts.add(1)],
                condition=(SignInCodeModel.attempts < max_attempts)
                & (SignInCodeModel.code_hash == digest),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def consume_code(self, ref: str, digest: str, at: datetime) -> bool:
        """Mark the code used if it is still this one and unused: a code signs in once. The row
        stays (until its TTL) so a retry of the same right code can be told from a reuse."""
        try:
            SignInCodeModel(ref).update(
                actions=[SignInCodeModel.used_at.set(at)],
                condition=(SignInCodeModel.code_hash == digest)
                & SignInCodeModel.used_at.does_not_exist(),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def hit(self, key: str, window_ends_at: datetime) -> int:
        """Count one event in a fixed window. (A retried ADD may overcount: fine for a limit.)"""
        row = RateLimitModel(key)
        row.update(actions=[RateLimitModel.hits.add(1), RateLimitModel.ttl.set(window_ends_at)])
        return int(row.hits)

    # --- sessions ---------------------------------------------------------------------------

    def create_session(
        self, session_id: str, user_id: str, digest: str, at: datetime, ttl_s: int
    ) -> bool:
        """Open a session once. False if one with this id exists already."""
        expires_at = at + timedelta(seconds=ttl_s)
        try:
            SessionModel(
                session_id,
                user_id=user_id,
                secret_hash=digest,
                created_at=at,
                expires_at=expires_at,
                ttl=expires_at,
            ).save(condition=SessionModel.session_id.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def session(self, session_id: str, now: datetime) -> SessionState | None:
        """A live session; None when revoked, expired or unknown."""
        try:
            row = SessionModel.get(session_id, consistent_read=True)
        except SessionModel.DoesNotExist:
            return None
        if row.revoked or row.expires_at <= now:
            return None
        return SessionState(row.user_id, row.secret_hash, row.rotated_at)

    def rotate(self, session_id: str, old_digest: str, new_digest: str, at: datetime) -> bool:
        """Replace the refresh secret if it is still `old_digest`; False if it is not (another
        refresh rotated it first, or the session was revoked)."""
        try:
            SessionModel(session_id).update(
                actions=[SessionModel.secret_hash.set(new_digest), SessionModel.rotated_at.set(at)],
                condition=(SessionModel.secret_hash == old_digest)
                & (SessionModel.revoked == False),  # noqa: E712 (a PynamoDB condition)
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def revoke(self, session_id: str) -> None:
        try:
            SessionModel(session_id).update(
                actions=[SessionModel.revoked.set(True)],
                condition=SessionModel.session_id.exists(),
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    # --- the social graph -----------------------------------------------------------------

    def sessions_of(self, user_id: str) -> list[str]:
        return [row.session_id for row in SessionModel.by_user.query(user_id)]

    def delete_session(self, session_id: str) -> None:
        SessionModel(session_id).delete()

    def delete_code(self, ref: str) -> None:
        SignInCodeModel(ref).delete()

    # --- erasure (services/account.py) ------------------------------------------------------

    def invited_numbers(self, user_id: str) -> list[str]:
        return [row.phone for row in PhoneModel.by_inviter.query(user_id)]

    def forget_inviter(self, phone: str, user_id: str) -> None:
        """A number the deleted member invited keeps its invitation, not who gave it."""
        try:
            PhoneModel(phone).update(
                actions=[PhoneModel.invited_by.remove()],
                condition=PhoneModel.invited_by == user_id,
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def quarantine_username(self, username: str, user_id: str, until: datetime) -> None:
        """Hold a deleted member's name, tied to nobody, until `until`; then it is free."""
        try:
            UsernameModel(username).update(
                actions=[
                    UsernameModel.user_id.remove(),
                    UsernameModel.phone.set(QUARANTINED),
                    UsernameModel.quarantined_until.set(until),
                    UsernameModel.ttl.set(until),
                ],
                condition=UsernameModel.user_id == user_id,
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def delete_phone(self, phone: str, user_id: str) -> None:
        try:
            PhoneModel(phone).delete(condition=PhoneModel.user_id == user_id)
        except DeleteError as error:
            if not condition_failed(error):
                raise

    def delete_member(self, user_id: str) -> None:
        UserModel(user_id).delete()

    def remove_block_of(self, blocker_id: str, blocked_id: str) -> None:
        RelationModel(blocker_id, BLOCKS + blocked_id).delete()

    def relation_exists(self, user_id: str, edge: str) -> bool:
        try:
            RelationModel.get(user_id, edge)
        except RelationModel.DoesNotExist:
            return False
        return True

    def follow(self, follower_id: str, followee_id: str, at: datetime) -> bool:
        """Follow, counting on both profiles in the same transaction. False if already."""
        try:
            with (tx := transaction()):
                tx.save(
                    RelationModel(
                        follower_id,
                        FOLLOWS + followee_id,
                        other_id=followee_id,
                        inverse_edge=FOLLOWS + follower_id,
                        created_at=at,
                    ),
                    condition=RelationModel.edge.does_not_exist(),
                )
                tx.condition_check(
                    RelationModel,
                    followee_id,
                    BLOCKS + follower_id,
                    condition=RelationModel.edge.does_not_exist(),
                )
                tx.update(
                    UserModel(followee_id),
                    actions=[UserModel.followers_count.add(1)],
                    condition=UserModel.status == MemberStatus.ACTIVE.value,
                )
                tx.update(UserModel(follower_id), actions=[UserModel.following_count.add(1)])
        except TransactWriteError as error:
            exists, blocked, target_gone, _ = tx.failed(error)
            if exists:
                return False
            if blocked:
                raise BlockedError() from error
            if target_gone:
                raise MemberNotFoundError() from error
            raise
        return True

    def unfollow(self, follower_id: str, followee_id: str) -> bool:
        try:
            with (tx := transaction()):
                tx.delete(
                    RelationModel(follower_id, FOLLOWS + followee_id),
                    condition=RelationModel.edge.exists(),
                )
                tx.update(UserModel(followee_id), actions=[UserModel.followers_count.add(-1)])
                tx.update(UserModel(follower_id), actions=[UserModel.following_count.add(-1)])
        except TransactWriteError as error:
            if tx.failed(error)[0]:
                return False
            raise
        return True

    def block(self, blocker_id: str, blocked_id: str, at: datetime) -> None:
        RelationModel(
            blocker_id,
            BLOCKS + blocked_id,
            other_id=blocked_id,
            inverse_edge=BLOCKS + blocker_id,
            created_at=at,
        ).save()

    def unblock(self, blocker_id: str, blocked_id: str) -> None:
        RelationModel(blocker_id, BLOCKS + blocked_id).delete()

    def outgoing(self, user_id: str, kind: str, limit: int, cursor: str | None) -> Page:
        rows = RelationModel.query(
            user_id,
            RelationModel.edge.startswith(kind),
            limit=limit,
            last_evaluated_key=decode_cursor(cursor),
        )
        return Page(*read_page(rows, lambda row: row.other_id))

    def incoming(self, user_id: str, kind: str, limit: int, cursor: str | None) -> Page:
        rows = RelationModel.inverse.query(
            user_id,
            RelationModel.inverse_edge.startswith(kind),
            limit=limit,
            last_evaluated_key=decode_cursor(cursor),
        )
        return Page(*read_page(rows, lambda row: row.user_id))

    def edges_to(self, user_id: str, others: Iterable[str]) -> tuple[set[str], set[str]]:
        """(who of `others` follows `user_id`, who of them has blocked `user_id`), read in one
        batch: rooms ask this of their moderators."""
        ids = list(dict.fromkeys(others))
        keys = [(o, FOLLOWS + user_id) for o in ids] + [(o, BLOCKS + user_id) for o in ids]
        rows = list(RelationModel.batch_get(keys)) if keys else []
        followers = {row.user_id for row in rows if row.edge == FOLLOWS + user_id}
        blockers = {row.user_id for row in rows if row.edge == BLOCKS + user_id}
        return followers, blockers

    def blocked_either_way(self, user_id: str, others: Iterable[str]) -> set[str]:
        """Who of `others` has blocked `user_id` or is blocked by them: two keys each, one
        batch (a push is never sent across a block in either direction)."""
        ids = [o for o in dict.fromkeys(others) if o != user_id]
        keys = [(o, BLOCKS + user_id) for o in ids] + [(user_id, BLOCKS + o) for o in ids]
        rows = list(RelationModel.batch_get(keys)) if keys else []
        return {row.user_id if row.user_id != user_id else row.other_id for row in rows}
