"""Running the console: `waihu console`'s options, the notes at start, a real listening
socket, and the session key's rotation."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher
from cryptography.fernet import InvalidToken

from bot import accounts, keys
from bot.console.app import SessionCipher
from bot.console.command import add_console_options, settings_from
from bot.console.server import running, startup_notes
from bot.console.settings import ConsoleSettings
from bot.events import InProcessBus
from bot.store import Database


def _parse(*argv: str, prefix: str = "") -> ConsoleSettings:
    parser = argparse.ArgumentParser()
    add_console_options(parser, prefix)
    return settings_from(parser.parse_args(list(argv)), prefix)


def test_loopback_unless_another_address_is_given() -> None:
    default = _parse()
    assert (default.host, default.port, default.secure_cookies) == ("127.0.0.1", 8080, False)
    assert default.loopback
    given = _parse("--host", "0.0.0.0", "--port", "9000", "--secure-cookies",
                   "--trusted-proxy", "127.0.0.1")
    assert (given.host, given.port, given.secure_cookies, given.trusted_proxy) == (
        "0.0.0.0", 9000, True, "127.0.0.1")
    assert not given.loopback
    embedded = _parse("--console-port", "9001", prefix="console-")
    assert (embedded.host, embedded.port) == ("127.0.0.1", 9001)


def test_startup_notes(sqlite_db: Database) -> None:
    notes = startup_notes(ConsoleSettings(host="0.0.0.0"), sqlite_db)
    assert any("reachable from other machines" in n and "--secure-cookies" in n
               for n in notes)
    assert any("waihu user add" in n for n in notes)
    cheap = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.create_user(sqlite_db, cheap, "boss", "admin", "a good password", actor="t")
    assert startup_notes(ConsoleSettings(), sqlite_db) == []


async def test_it_listens_on_a_free_loopback_port(sqlite_db: Database) -> None:
    async with running(ConsoleSettings(port=0), sqlite_db, InProcessBus()) as url:
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{url}/login") as response:
            assert response.status == 200
            assert "csrf_token" in await response.text()


def test_a_rotated_session_key_still_reads_older_cookies() -> None:
    old = keys.Keyring("console-session", (keys.Key("k1", secrets.token_bytes(32)),))
    new = keys.Keyring("console-session", (keys.Key("k2", secrets.token_bytes(32)),
                                           *old.keys))
    token = SessionCipher(old).encrypt(b'{"uid": 1}')
    assert SessionCipher(new).decrypt(token) == b'{"uid": 1}'
    fresh = SessionCipher(new).encrypt(b"x")
    with pytest.raises(InvalidToken):
        SessionCipher(old).decrypt(fresh)


def test_the_console_refuses_to_start_without_its_key(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.console.app import create_app

    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path))
    with pytest.raises(keys.KeyringError, match="console-session"):
        create_app(ConsoleSettings(), sqlite_db, InProcessBus())


async def test_waihu_run_starts_the_console_unless_told_not_to(
        sqlite_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    from voice.cli import build_parser
    from voice.commands import _console

    args = build_parser().parse_args(["run", "--console-port", "0"])
    async with _console(args, sqlite_db, InProcessBus()):
        url = capsys.readouterr().err.split("console on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/login")
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
    args = build_parser().parse_args(["run", "--no-console"])
    async with _console(args, sqlite_db, InProcessBus()):
        assert "console on" not in capsys.readouterr().err


def test_keys_rotate_console_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path))
    assert main(["keys", "init"]) == 0
    before = keys.load(keys.CONSOLE_SESSION)
    assert main(["keys", "rotate", keys.CONSOLE_SESSION]) == 0
    assert "older ones stay valid until they expire" in capsys.readouterr().out
    after = keys.load(keys.CONSOLE_SESSION)
    token = SessionCipher(before).encrypt(b"{}")
    assert SessionCipher(after).decrypt(token) == b"{}"
