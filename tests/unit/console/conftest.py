"""The console under aiohttp's test client, on a fresh SQLite database, with cheap Argon2
parameters (the production defaults cost 64 MiB and ~100 ms a hash) and a clock the test
moves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from bot import accounts
from bot.console.app import create_app
from bot.console.settings import ConsoleSettings
from bot.events import InProcessBus
from bot.store import Database
from tests.unit.console.desk_helpers import add_trial_campaign

PASSWORD = "correct horse 1"
ROLES = ("admin", "supervisor", "qa", "agent")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2030, 5, 6, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def passwords() -> accounts.Passwords:
    return accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def users(sqlite_db: Database, passwords: accounts.Passwords) -> dict[str, accounts.UserInfo]:
    """One account of each role, named after it (the agent serves campaign "trial")."""
    made = {}
    for role in ROLES:
        agent = accounts.AgentOptions("sip:1001@127.0.0.1", ("trial",), 2) \
            if role == "agent" else None
        made[role] = accounts.create_user(sqlite_db, passwords, role, role, PASSWORD,
                                          actor="test", agent=agent)
    return made


Factory = Callable[..., Any]


@pytest.fixture
async def make_client(sqlite_db: Database, passwords: accounts.Passwords, clock: Clock,
                      bus: InProcessBus) -> AsyncIterator[Factory]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(**settings: Any) -> TestClient[web.Request, web.Application]:
        app = create_app(ConsoleSettings(**settings), sqlite_db, bus, passwords=passwords,
                         clock=clock)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client
    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: Factory, users: dict[str, accounts.UserInfo]
                 ) -> TestClient[web.Request, web.Application]:
    return await make_client()  # type: ignore[no-any-return]


@pytest.fixture
async def desk_client(make_client: Factory, users: dict[str, accounts.UserInfo],
                      sqlite_db: Database) -> TestClient[web.Request, web.Application]:
    """A client of the console whose agent serves the trial campaign (after-call work capped
    at 90 s); the desk's watcher is not started: the tests tick it."""
    add_trial_campaign(sqlite_db, wrap_up_max_s=90)
    client: TestClient[web.Request, web.Application] = await make_client(desk_poll_s=0)
    return client


async def csrf_of(client: TestClient[web.Request, web.Application], path: str) -> str:
    """The CSRF token on the page at *path* (the session's)."""
    response = await client.get(path)
    found = CSRF.search(await response.text())
    assert found, f"no CSRF token on {path} ({response.status})"
    return found.group(1)


async def log_in(client: TestClient[web.Request, web.Application], username: str,
                 password: str = PASSWORD, **headers: str) -> Any:
    token = await csrf_of(client, "/login")
    return await client.post("/login", data={"username": username, "password": password,
                                             "csrf_token": token},
                             allow_redirects=False, headers=headers)
