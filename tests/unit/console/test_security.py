"""The console's guards: CSRF refusals (and nothing changed), login throttling and lockout,
the session cookie's flags and life, the response headers."""

from __future__ import annotations

import base64
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import accounts
from bot.console.security import CSP
from bot.store import AuditRepo, Database
from tests.unit.console.conftest import PASSWORD, Clock, csrf_of, log_in

Client = TestClient[web.Request, web.Application]
NEW_USER = {"username": "newbie", "role": "qa", "password": "long enough 123"}


def _names(db: Database) -> set[str]:
    return {user.username for user in accounts.list_users(db)}


def _actions(db: Database) -> list[tuple[str, str | None, str]]:
    with db.session() as session:
        return [(e.action, e.subject, e.actor) for e in AuditRepo(session).entries()
                if e.actor != "test"]


# --- CSRF ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged-token", "wrong"])
async def test_a_form_without_the_sessions_token_changes_nothing(
        client: Client, sqlite_db: Database, token: str | None) -> None:
    await log_in(client, "admin")
    data = dict(NEW_USER) if token is None else {**NEW_USER, "csrf_token": token}
    response = await client.post("/admin/users", data=data, allow_redirects=False)
    assert response.status == 403
    assert "newbie" not in _names(sqlite_db)
    response = await client.post("/admin/users/qa/disable", data=data, allow_redirects=False)
    assert response.status == 403
    assert not next(u for u in accounts.list_users(sqlite_db) if u.username == "qa").disabled


async def test_another_sessions_token_is_refused(make_client: Any, users: Any,
                                                 sqlite_db: Database) -> None:
    mine, theirs = await make_client(), await make_client()
    await log_in(mine, "admin")
    await log_in(theirs, "admin")
    their_token = await csrf_of(theirs, "/admin")
    response = await mine.post("/admin/users", data={**NEW_USER, "csrf_token": their_token})
    assert response.status == 403
    assert "newbie" not in _names(sqlite_db)


async def test_the_right_token_works_and_a_header_carries_it_too(
        client: Client, sqlite_db: Database) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/users", data={**NEW_USER, "csrf_token": token},
                                 allow_redirects=False)
    assert response.status == 303
    assert "newbie" in _names(sqlite_db)
    response = await client.post("/admin/users/newbie/disable", headers={
        "X-CSRF-Token": token}, allow_redirects=False)
    assert response.status == 303


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"},
                                     {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}])
async def test_a_cross_site_request_is_refused_even_with_the_token(
        client: Client, sqlite_db: Database, headers: dict[str, str]) -> None:
    await log_in(client, "admin")
    token = await csrf_of(client, "/admin")
    response = await client.post("/admin/users", data={**NEW_USER, "csrf_token": token},
                                 headers=headers)
    assert response.status == 403
    assert "newbie" not in _names(sqlite_db)


async def test_the_login_form_needs_its_token(client: Client) -> None:
    response = await client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status == 403
    assert (await client.get("/admin", allow_redirects=False)).status == 303  # not logged in


async def test_logout_needs_the_token(client: Client, sqlite_db: Database) -> None:
    await log_in(client, "agent")
    assert (await client.post("/logout", allow_redirects=False)).status == 403
    assert (await client.get("/agent")).status == 200  # still logged in
    token = await csrf_of(client, "/agent")
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.headers["Location"] == "/login"
    assert (await client.get("/agent", allow_redirects=False)).status == 303
    assert ("logout", "agent", "user:agent") in _actions(sqlite_db)


async def test_login_replaces_the_anonymous_token(client: Client) -> None:
    before = await csrf_of(client, "/login")
    await client.post("/login", data={"username": "qa", "password": PASSWORD,
                                      "csrf_token": before})
    assert await csrf_of(client, "/qa") != before


# --- login, throttling, lockout ----------------------------------------------------------


async def test_login_is_audited(client: Client, sqlite_db: Database) -> None:
    assert (await log_in(client, "qa")).status == 303
    assert (await log_in(client, "qa", "wrong password")).status == 401
    assert (await log_in(client, "nobody", "wrong password")).status == 401
    actions = _actions(sqlite_db)
    assert ("login.succeeded", "qa", "user:qa") in actions
    assert ("login.failed", "qa", "anonymous") in actions
    assert ("login.failed", "nobody", "anonymous") in actions


async def test_every_refusal_reads_the_same(client: Client, sqlite_db: Database) -> None:
    accounts.set_disabled(sqlite_db, "supervisor", True, actor="test")
    texts = set()
    for name, password in (("qa", "wrong password"), ("nobody", PASSWORD),
                           ("supervisor", PASSWORD)):
        response = await log_in(client, name, password)
        assert response.status == 401
        text = await response.text()
        texts.add(text.replace(f'value="{name}"', ""))
        assert "用户名或密码错误" in text
    assert len({t.split('name="csrf_token"')[0] for t in texts}) == 1


async def test_five_failures_lock_the_account_for_a_while(
        client: Client, sqlite_db: Database, clock: Clock) -> None:
    for _ in range(5):
        assert (await log_in(client, "agent", "not the password")).status == 401
    assert ("login.locked", "agent", "system") in _actions(sqlite_db)
    # Locked: the right password is refused too, and looks like any refusal.
    response = await log_in(client, "agent")
    assert response.status == 401
    assert "用户名或密码错误" in await response.text()
    clock.advance(minutes=16)
    assert (await log_in(client, "agent")).status == 303
    user = next(u for u in accounts.list_users(sqlite_db) if u.username == "agent")
    assert user.locked_until is None


async def test_a_locked_account_is_locked_again_at_its_next_failure(
        client: Client, sqlite_db: Database, clock: Clock) -> None:
    for _ in range(5):
        await log_in(client, "agent", "not the password")
    clock.advance(minutes=16)
    await log_in(client, "agent", "still not it")
    clock.advance(minutes=1)
    assert (await log_in(client, "agent")).status == 401


async def test_one_address_is_throttled_across_accounts(
        make_client: Any, users: Any, sqlite_db: Database, clock: Clock) -> None:
    client = await make_client(address_failures=3)
    for name in ("qa", "supervisor", "nobody"):
        assert (await log_in(client, name, "guess 1234567")).status == 401
    response = await log_in(client, "agent")  # the right password, but this address waits
    assert response.status == 429
    assert "尝试次数过多" in await response.text()
    assert any(action == "login.address_blocked" for action, _, _ in _actions(sqlite_db))
    clock.advance(minutes=16)
    assert (await log_in(client, "agent")).status == 303


async def test_a_trusted_proxy_names_the_client(make_client: Any, users: Any,
                                                sqlite_db: Database) -> None:
    client = await make_client(address_failures=2, trusted_proxy="127.0.0.1")
    for _ in range(2):
        await log_in(client, "qa", "guess 1234567", **{"X-Forwarded-For": "203.0.113.7"})
    assert (await log_in(client, "qa", **{"X-Forwarded-For": "203.0.113.7"})).status == 429
    assert (await log_in(client, "qa", **{"X-Forwarded-For": "203.0.113.8"})).status == 303


async def test_an_untrusted_forwarded_header_is_ignored(make_client: Any, users: Any) -> None:
    client = await make_client(address_failures=2)
    for n in range(2):
        await log_in(client, "qa", "guess 1234567", **{"X-Forwarded-For": f"198.51.100.{n}"})
    assert (await log_in(client, "qa", **{"X-Forwarded-For": "198.51.100.9"})).status == 429


# --- the session cookie ----------------------------------------------------------------


def _session_cookie(response: Any) -> Any:
    cookies = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        cookies.load(header)
    return next(iter(cookies.values()))


async def test_the_session_cookie_flags(client: Client) -> None:
    cookie = _session_cookie(await log_in(client, "qa"))
    assert cookie.key == "waihu_console"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == 12 * 3600
    # Encrypted: a Fernet token (version byte 0x80, URL-safe base64), never the session's
    # JSON. (Looking for "qa" in it failed once in ~20 runs: base64 holds any two letters.)
    assert base64.urlsafe_b64decode(cookie.value + "=" * (-len(cookie.value) % 4))[0] == 0x80
    assert not set('{}":') & set(cookie.value)


async def test_behind_tls_the_cookie_is_secure(make_client: Any, users: Any) -> None:
    client = await make_client(secure_cookies=True)
    response = await log_in(client, "qa", Origin=f"https://{client.host}:{client.port}")
    cookie = _session_cookie(response)
    assert cookie.key == "__Host-waihu_console"
    assert cookie["secure"] is True
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


async def test_a_tampered_cookie_is_nobody(client: Client) -> None:
    await log_in(client, "admin")
    jar = client.session.cookie_jar
    value = next(c for c in jar if c.key == "waihu_console").value
    jar.clear()
    assert (await client.get("/admin", allow_redirects=False, headers={
        "Cookie": f"waihu_console={value}"})).status == 200
    jar.clear()
    tampered = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    assert (await client.get("/admin", allow_redirects=False, headers={
        "Cookie": f"waihu_console={tampered}"})).status == 303


async def test_a_session_ends_after_its_lifetime(client: Client, clock: Clock) -> None:
    await log_in(client, "qa")
    clock.advance(hours=11)
    assert (await client.get("/qa", allow_redirects=False)).status == 200
    clock.advance(hours=2)
    assert (await client.get("/qa", allow_redirects=False)).status == 303


@pytest.mark.parametrize("change", ["disable", "passwd"])
async def test_disabling_or_a_new_password_ends_the_session(
        client: Client, sqlite_db: Database, passwords: accounts.Passwords,
        change: str) -> None:
    await log_in(client, "qa")
    if change == "disable":
        accounts.set_disabled(sqlite_db, "qa", True, actor="test")
    else:
        accounts.change_password(sqlite_db, passwords, "qa", "another one 123", actor="test")
    assert (await client.get("/qa", allow_redirects=False)).status == 303
    if change == "passwd":
        assert (await log_in(client, "qa", "another one 123")).status == 303


# --- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/nowhere", "/static/console.css"])
async def test_security_headers_on_every_response(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http here
    if not path.startswith("/static/"):
        assert response.headers["Cache-Control"] == "no-store"


async def test_no_inline_script_or_style_in_any_page(client: Client) -> None:
    await log_in(client, "admin")
    for path in ("/agent", "/supervisor", "/qa", "/admin"):
        text = await (await client.get(path)).text()
        assert "<script>" not in text and "<style" not in text and " style=" not in text
        assert " on" + "click=" not in text and " onsubmit=" not in text
