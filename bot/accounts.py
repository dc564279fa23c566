"""Console accounts: who may log in, with which password, and when guessing stops.

Passwords are hashed with Argon2id (argon2-cffi's `PasswordHasher`, whose defaults are RFC
9106's low-memory profile: 64 MiB, 3 passes, 4 lanes): memory-hard, so a stolen table costs
an attacker memory as well as time per guess.  A hash made with older parameters is replaced
at the next successful login.

Guessing stops per account here (stored, so a restart or a second console does not reset it):
after `LoginPolicy.lock_after` failures in a row the account is locked for
`LoginPolicy.lockout`; the next failure after that locks it again at once.  A locked or
disabled account's password is not even checked (no oracle), and every refusal looks the
same from outside.  Guessing per client address is `bot/console/throttle.py`'s.

Every change and every login is written to the audit log (`AuditRepo`) in the same unit of
work as the change itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.sip_address import check_sip_address
from bot.store import Database
from bot.store.models import User
from bot.store.repos.audit import AuditRepo
from bot.store.repos.users import UserRepo
from bot.store.vocab import USER_ROLES

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
MIN_WEIGHT, MAX_WEIGHT = 1, 100
# Besides agents, these roles may have a phone (a SIP address, nothing else) in the same
# profile: the gateway dials a supervisor's to listen, whisper or barge (bot/monitoring.py).
# With no campaigns such a profile is never offered a call, and the desk's pages and the
# wall list users of role agent only.
PHONE_ROLES = ("supervisor", "admin")


class AccountError(ValueError):
    """A refused account change; the message says why (it never holds a password)."""


@dataclass(frozen=True)
class LoginPolicy:
    lock_after: int = 5  # failures in a row that lock the account
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class AgentInfo:
    sip_uri: str | None
    campaigns: tuple[str, ...]
    weight: int


@dataclass(frozen=True)
class UserInfo:
    """What the console and the CLI may know of an account: never the hash."""

    id: int
    username: str
    display_name: str | None
    role: str
    disabled: bool
    session_version: int
    last_login_at: datetime | None
    locked_until: datetime | None
    agent: AgentInfo | None = None

    @classmethod
    def of(cls, user: User) -> UserInfo:
        agent = user.agent
        return cls(user.id, user.username, user.display_name, user.role, user.disabled,
                   user.session_version, user.last_login_at, user.locked_until,
                   None if agent is None else AgentInfo(agent.sip_uri, tuple(agent.campaigns),
                                                        agent.weight))

    @property
    def label(self) -> str:
        return self.display_name or self.username

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "username": self.username, "display_name": self.display_name, "role": self.role,
            "disabled": self.disabled,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None}
        if self.agent is not None:
            out["agent"] = {"sip_uri": self.agent.sip_uri,
                            "campaigns": list(self.agent.campaigns),
                            "weight": self.agent.weight}
        return out


class Passwords:
    """Hashing and checking; tests pass a cheap `PasswordHasher`, production the default."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    @property
    def dummy(self) -> str:
        """Checked against when the account does not exist, so that an unknown name takes
        as long to refuse as a wrong password (made on first use: it costs a hash)."""
        if self._dummy is None:
            self._dummy = self.hasher.hash("waihu: no such account")
        return self._dummy

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash or self.dummy, password) and (
                password_hash is not None)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class AgentOptions:
    sip_uri: str | None = None
    campaigns: tuple[str, ...] | None = None
    weight: int | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.sip_uri, self.campaigns, self.weight))


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise AccountError("a user name is 2-64 characters: lower-case letters, digits, "
                           "'.', '_' or '-', starting with a letter or digit")
    return username


def check_password(password: str, username: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
    if password.strip().lower() == username.lower():
        raise AccountError("the password may not be the user name")
    return password


def check_agent(options: AgentOptions) -> AgentOptions:
    """*options* checked, the SIP address stripped (bot/sip_address.py says what it may be)."""
    if options.sip_uri is not None:
        try:
            options = replace(options, sip_uri=check_sip_address(options.sip_uri))
        except ValueError as exc:
            raise AccountError(str(exc)) from None
    if options.weight is not None and not MIN_WEIGHT <= options.weight <= MAX_WEIGHT:
        raise AccountError(f"a weight is a whole number from {MIN_WEIGHT} to {MAX_WEIGHT}, "
                           f"not {options.weight}")
    for name in options.campaigns or ():
        if not name or len(name) > 100 or name != name.strip():
            raise AccountError(f"campaign name {name!r} is not valid")
    return options


def parse_campaigns(text: str | None) -> tuple[str, ...] | None:
    """``"A, B"`` -> ``("A", "B")``; None stays None (no change)."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def create_user(db: Database, passwords: Passwords, username: str, role: str, password: str,
                *, actor: str, display_name: str | None = None,
                agent: AgentOptions | None = None) -> UserInfo:
    check_username(username)
    if role not in USER_ROLES:
        raise AccountError(f"role must be one of {', '.join(USER_ROLES)}")
    check_password(password, username)
    agent = check_agent(agent or AgentOptions())
    if agent.given and role != "agent" and (role not in PHONE_ROLES or agent.campaigns
                                            or agent.weight is not None):
        raise AccountError("campaigns and weight are for role agent only; a SIP address "
                           "for agents and, for monitoring calls, supervisors and admins")
    display_name = (display_name or "").strip() or None
    if display_name is not None and len(display_name) > 100:
        raise AccountError("a display name has at most 100 characters")
    password_hash = passwords.hash(password)
    with db.session() as session:
        users = UserRepo(session)
        if users.by_name(username) is not None:
            raise AccountError(f"user {username!r} exists already")
        user = users.add(username, role, password_hash, display_name)
        if role == "agent":
            users.set_agent(user, sip_uri=agent.sip_uri, campaigns=agent.campaigns or (),
                            weight=agent.weight if agent.weight is not None else 1)
        elif agent.sip_uri is not None:  # a supervisor's phone, in the same profile
            users.set_agent(user, sip_uri=agent.sip_uri)
        detail: dict[str, Any] = {"role": role}
        if role == "agent":
            detail.update(sip_uri=agent.sip_uri, campaigns=list(agent.campaigns or ()),
                          weight=user.agent.weight if user.agent else None)
        elif agent.sip_uri is not None:
            detail.update(sip_uri=agent.sip_uri)
        AuditRepo(session).record(actor, "user.created", username, **detail)
        return UserInfo.of(user)


def set_disabled(db: Database, username: str, disabled: bool, *, actor: str) -> UserInfo:
    """Disable (every session of the account ends at its next request) or enable again."""
    with db.session() as session:
        users = UserRepo(session)
        user = _existing(users, username)
        users.set_disabled(user, disabled)
        AuditRepo(session).record(actor, "user.disabled" if disabled else "user.enabled",
                                  username)
        return UserInfo.of(user)


def change_password(db: Database, passwords: Passwords, username: str, password: str,
                    *, actor: str) -> UserInfo:
    check_password(password, username)
    password_hash = passwords.hash(password)
    with db.session() as session:
        users = UserRepo(session)
        user = _existing(users, username)
        users.set_password(user, password_hash)
        AuditRepo(session).record(actor, "user.password_changed", username)
        return UserInfo.of(user)


def list_users(db: Database) -> list[UserInfo]:
    with db.session() as session:
        return [UserInfo.of(user) for user in UserRepo(session).list()]


def current_user(db: Database, user_id: int) -> UserInfo | None:
    with db.session() as session:
        user = UserRepo(session).by_id(user_id)
        return None if user is None else UserInfo.of(user)


def _existing(users: UserRepo, username: str) -> User:
    user = users.by_name(username)
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


Refusal = Literal["password", "unknown_user", "locked", "disabled"]


@dataclass(frozen=True)
class LoginResult:
    user: UserInfo | None  # None: refused, for the reason below (never shown to the client)
    refusal: Refusal | None = None
    locked_now: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def login(db: Database, passwords: Passwords, username: str, password: str, *, at: datetime,
          address: str, policy: LoginPolicy | None = None) -> LoginResult:
    """Check a login and record it (audit log, counters); see the module's docstring."""
    policy = policy or LoginPolicy()
    with db.session(write=True) as session:
        users, audit = UserRepo(session), AuditRepo(session)
        user = users.by_name(username) if USERNAME.fullmatch(username) else None
        if user is None:
            passwords.verify(None, password)  # the same time as a wrong password
            audit.record("anonymous", "login.failed", _loggable(username), at=at,
                         reason="unknown_user", address=address)
            return LoginResult(None, "unknown_user")
        refusal: Refusal | None = None
        if user.disabled:
            refusal = "disabled"
        elif user.locked_until is not None and user.locked_until > at:
            refusal = "locked"
        elif not passwords.verify(user.password_hash, password):
            refusal = "password"
        if refusal is not None:
            locked_now = False
            if refusal == "password":
                locked_now = user.failed_logins + 1 >= policy.lock_after
                users.record_failure(user, at + policy.lockout if locked_now else None)
            audit.record("anonymous", "login.failed", username, at=at, reason=refusal,
                         address=address, failures=user.failed_logins)
            if locked_now:
                audit.record("system", "login.locked", username, at=at, address=address,
                             until=(at + policy.lockout).isoformat(),
                             failures=user.failed_logins)
            return LoginResult(None, refusal, locked_now)
        if passwords.needs_rehash(user.password_hash):
            users.rehash(user, passwords.hash(password))
        users.record_login(user, at)
        audit.record(f"user:{username}", "login.succeeded", username, at=at, address=address)
        return LoginResult(UserInfo.of(user))


def _loggable(username: str) -> str:
    """An unknown login name as the audit log keeps it: only when it looks like a user name
    (a password typed into the name field must not end up in the log)."""
    return username if USERNAME.fullmatch(username) else "(not a user name)"


def record(db: Database, actor: str, action: str, subject: str | None = None,
           **detail: Any) -> None:
    """One audit entry in a unit of work of its own (a logout, a throttled address)."""
    with db.session() as session:
        AuditRepo(session).record(actor, action, subject, **detail)

