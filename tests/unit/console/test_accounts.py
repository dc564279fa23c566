"""Accounts (bot/accounts.py) on both databases, and `waihu user` (bot/user_commands.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from bot import accounts
from bot.cli import main
from bot.store import AuditRepo, Database
from bot.store.models import User
from bot.store.repos.users import UserRepo

AT = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def passwords() -> accounts.Passwords:
    return accounts.Passwords(CHEAP)


def _stored_hash(db: Database, name: str) -> str:
    with db.session() as session:
        return str(session.scalar(select(User.password_hash).where(User.username == name)))


def test_the_password_is_stored_as_argon2id_only(db: Database,
                                                 passwords: accounts.Passwords) -> None:
    accounts.create_user(db, passwords, "wang", "agent", "a good password", actor="test")
    stored = _stored_hash(db, "wang")
    assert stored.startswith("$argon2id$") and "a good password" not in stored
    assert accounts.login(db, passwords, "wang", "a good password", at=AT,
                          address="127.0.0.1").user is not None


def test_an_old_hash_is_replaced_at_the_next_login(db: Database) -> None:
    old = accounts.Passwords(CHEAP)
    accounts.create_user(db, old, "wang", "qa", "a good password", actor="test")
    before = _stored_hash(db, "wang")
    stronger = accounts.Passwords(PasswordHasher(time_cost=2, memory_cost=2048,
                                                 parallelism=1))
    assert accounts.login(db, stronger, "wang", "a good password", at=AT,
                          address="127.0.0.1").user is not None
    after = _stored_hash(db, "wang")
    assert after != before and "t=2" in after


def test_lockout_is_stored_with_the_account(db: Database,
                                            passwords: accounts.Passwords) -> None:
    accounts.create_user(db, passwords, "wang", "qa", "a good password", actor="test")
    policy = accounts.LoginPolicy(lock_after=3, lockout=timedelta(minutes=10))
    results = [accounts.login(db, passwords, "wang", "nope", at=AT, address="a",
                              policy=policy) for _ in range(3)]
    assert [r.locked_now for r in results] == [False, False, True]
    locked = accounts.login(db, passwords, "wang", "a good password",
                            at=AT + timedelta(minutes=9), address="a", policy=policy)
    assert locked.user is None and locked.refusal == "locked"
    ok = accounts.login(db, passwords, "wang", "a good password",
                        at=AT + timedelta(minutes=11), address="a", policy=policy)
    assert ok.user is not None and ok.user.last_login_at == AT + timedelta(minutes=11)
    with db.session() as session:
        user = UserRepo(session).get("wang")
        assert user.failed_logins == 0 and user.locked_until is None
        actions = [e.action for e in AuditRepo(session).entries()]
    assert actions.count("login.failed") == 4 and actions.count("login.locked") == 1


def test_an_unknown_name_that_is_not_a_name_is_not_logged(
        db: Database, passwords: accounts.Passwords) -> None:
    accounts.login(db, passwords, "My Secret Pass!", "x", at=AT, address="a")
    accounts.login(db, passwords, "ghost", "x", at=AT, address="a")
    with db.session() as session:
        subjects = [e.subject for e in AuditRepo(session).entries(action="login.failed")]
    assert subjects == ["(not a user name)", "ghost"]


@pytest.mark.parametrize("kwargs, message", [
    ({"username": "A"}, "user name"),
    ({"password": "x" * 9}, "at least 10"),
    ({"password": "wang123456", "username": "wang123456"}, "may not be the user name"),
    ({"role": "god"}, "role must be"),
    ({"role": "qa", "agent": accounts.AgentOptions(weight=2)}, "role agent only"),
    ({"agent": accounts.AgentOptions(weight=-1)}, "weight"),
    ({"agent": accounts.AgentOptions(sip_uri="1001")}, "SIP address"),
])
def test_refused_accounts(db: Database, passwords: accounts.Passwords,
                          kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"username": "wang", "role": "agent",
                            "password": "a good password", **kwargs}
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_user(db, passwords, args.pop("username"), args.pop("role"),
                             args.pop("password"), actor="test", **args)
    assert accounts.list_users(db) == []


def test_agents_for_a_campaign(db: Database, passwords: accounts.Passwords) -> None:
    for name, campaigns in (("a1", ("trial",)), ("a2", ("trial", "survey")), ("a3", ())):
        accounts.create_user(db, passwords, name, "agent", "a good password", actor="t",
                             agent=accounts.AgentOptions(campaigns=campaigns))
    accounts.set_disabled(db, "a2", True, actor="t")
    with db.session() as session:
        assert [a.user.username for a in UserRepo(session).agents_for("trial")] == ["a1"]


# --- waihu user ------------------------------------------------------------------------


@pytest.fixture
def url(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(accounts.Passwords, "__init__",
                        lambda self, hasher=None: _cheap_init(self))
    return sqlite_db.url.render_as_string(hide_password=False)


def _cheap_init(self: accounts.Passwords) -> None:
    self.hasher = CHEAP
    self._dummy = None


def _run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str,
         *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--database", url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_user_add_from_stdin_and_list_without_hashes(
        url: str, sqlite_db: Database, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, passwords: accounts.Passwords) -> None:
    code, out, _ = _run(capsys, monkeypatch, url, "user", "add", "wang", "--role", "agent",
                        "--display-name", "王芳", "--sip", "sip:1001@10.0.0.5",
                        "--campaigns", "trial,survey", "--weight", "3", "--password-stdin",
                        "--json", stdin="a good password\n")
    assert code == 0
    assert json.loads(out)["agent"] == {"sip_uri": "sip:1001@10.0.0.5",
                                        "campaigns": ["survey", "trial"], "weight": 3}
    code, out, _ = _run(capsys, monkeypatch, url, "user", "list", "--json")
    listed = json.loads(out)
    assert [u["username"] for u in listed] == ["wang"]
    assert "argon2" not in out and "hash" not in out
    assert accounts.login(sqlite_db, passwords, "wang", "a good password", at=AT,
                          address="a").user is not None
    with sqlite_db.session() as session:
        entry = AuditRepo(session).entries(action="user.created")[0]
    assert entry.actor.startswith("os:") and entry.subject == "wang"


def test_user_add_prompts_twice(url: str, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["a good password", "a good password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    monkeypatch.setattr("sys.stdin", Tty())
    assert main(["--database", url, "user", "add", "boss", "--role", "admin"]) == 0
    assert "user boss (admin) created" in capsys.readouterr().out
    answers = iter(["one password 1", "another one 2"])
    assert main(["--database", url, "user", "passwd", "boss"]) == 2
    assert "differ" in capsys.readouterr().err


def test_user_add_without_a_terminal_asks_for_stdin(
        url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _run(capsys, monkeypatch, url, "user", "add", "boss", "--role", "admin")
    assert code == 2 and "--password-stdin" in err


def test_user_add_refusals(url: str, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _run(capsys, monkeypatch, url, "user", "add", "qa1", "--role", "qa",
                        "--weight", "2", "--password-stdin", stdin="a good password\n")
    assert code == 2 and "role agent only" in err
    code, _, err = _run(capsys, monkeypatch, url, "user", "add", "qa1", "--role", "qa",
                        "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 10" in err
    _run(capsys, monkeypatch, url, "user", "add", "qa1", "--role", "qa", "--password-stdin",
         stdin="a good password\n")
    code, _, err = _run(capsys, monkeypatch, url, "user", "add", "qa1", "--role", "qa",
                        "--password-stdin", stdin="a good password\n")
    assert code == 2 and "exists already" in err


def test_user_disable_enable_passwd(url: str, sqlite_db: Database,
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch,
                                    passwords: accounts.Passwords) -> None:
    _run(capsys, monkeypatch, url, "user", "add", "qa1", "--role", "qa", "--password-stdin",
         stdin="a good password\n")
    assert _run(capsys, monkeypatch, url, "user", "disable", "qa1")[0] == 0
    assert accounts.login(sqlite_db, passwords, "qa1", "a good password", at=AT,
                          address="a").refusal == "disabled"
    code, out, _ = _run(capsys, monkeypatch, url, "user", "enable", "qa1", "--json")
    assert code == 0 and json.loads(out)["disabled"] is False
    assert _run(capsys, monkeypatch, url, "user", "passwd", "qa1", "--password-stdin",
                stdin="a new password 2\n")[0] == 0
    assert accounts.login(sqlite_db, passwords, "qa1", "a new password 2", at=AT,
                          address="a").user is not None
    assert _run(capsys, monkeypatch, url, "user", "disable", "ghost")[0] == 2
    with sqlite_db.session() as session:
        actions = [e.action for e in AuditRepo(session).entries(subject="qa1")
                   if e.actor.startswith("os:")]
    assert actions == ["user.created", "user.disabled", "user.enabled",
                       "user.password_changed"]
