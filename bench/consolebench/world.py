"""What the bench stands on: a fresh database (SQLite file, or the PostgreSQL one given) with
a campaign, its agents and the escalated calls waiting to be handed over, keyrings of its
own, and the console as its own process (`waihu console`), as in production."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot import accounts, callrecord, keys
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.store import CallRepo, CampaignRepo, ContactRepo, Database, EscalationRepo
from bot.store.base import utcnow
from bot.transcript import store_turn

REPO = Path(__file__).resolve().parents[2]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"
PASSWORD = "bench desk password 1"
# What the bot said before the customer asked for a person (stored before the hand-over).
BEFORE_HANDOVER = [("bot", "王先生您好，我们的来电提醒服务首月免费，之后每月5元。"),
                   ("customer", "我要找人工"),
                   ("bot", "好的，正在为您转接人工客服，请稍候。")]


@dataclass(frozen=True)
class Agent:
    user_id: int
    username: str


@dataclass(frozen=True)
class WaitingCall:
    """An answered call whose dialogue stored a pending escalation (as the actions do)."""

    call_id: str
    phone: str


def fresh_database(url: str | None, work: Path) -> Database:
    db = Database(url or f"sqlite:///{work / 'console-bench.db'}")
    db.upgrade()
    return db


def own_keys(work: Path) -> dict[str, str]:
    """Keyrings for this run only (the console's cookie key, the ID hash pepper); the
    environment that points the console and this process at them."""
    folder = work / "keys"
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in keys.KEYRINGS:
        keys.ensure(name, folder)
    return {keys.KEYS_DIR_ENV: str(folder)}


def add_campaign(db: Database, name: str) -> None:
    """The sample marketing campaign under *name*, with offers that ring long enough for the
    whole call (the bench measures the pop and the transcript, not the answers)."""
    defn = load_definition(MARKETING)
    defn = defn.model_copy(update={"name": name, "escalation": defn.escalation.model_copy(
        update={"strategy": "equal_share", "offer_timeout_s": 120, "wait_limit_s": 600})})
    save_campaign(db, defn)


def add_agents(db: Database, tag: str, count: int, campaign: str) -> list[Agent]:
    """*count* agents serving *campaign*, with the production password hashing (their
    logins cost what real ones do)."""
    passwords = accounts.Passwords()
    made = []
    for i in range(count):
        name = f"cb{tag}a{i:02d}"
        user = accounts.create_user(
            db, passwords, name, "agent", PASSWORD, actor="bench", display_name=f"坐席{i:02d}",
            agent=accounts.AgentOptions(f"sip:{2000 + i}@127.0.0.1", (campaign,), 1))
        made.append(Agent(user.id, name))
    return made


def add_waiting_calls(db: Database, campaign: str, count: int, first_phone: int
                      ) -> list[WaitingCall]:
    """*count* answered calls, each with the bot's turns before the hand-over and a pending
    escalation the gateway will open."""
    calls = []
    with db.session() as session:
        found = CampaignRepo(session).by_name(campaign)
        assert found is not None
        for i in range(count):
            phone = str(first_phone + i)
            contact = ContactRepo(session).add(found.id, phone, name=f"客户{i:02d}")
            attempt = CallRepo(session).start_attempt(found.id, contact.id)
            callrecord.record_dial_result(session, attempt.call_id, "answered", utcnow())
            for speaker, text in BEFORE_HANDOVER:
                store_turn(session, attempt.call_id, speaker, text)
            EscalationRepo(session).add(attempt.call_id, found.id, contact.id, "request_human", {
                "stage_before": "pitch", "pitched": True, "verified": True,
                "campaign": campaign})
            calls.append(WaitingCall(attempt.call_id, phone))
    return calls


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ConsoleProcess:
    url: str
    process: subprocess.Popen[bytes]

    def status(self, field: str) -> float:
        """A /proc status figure in MB (VmHWM: peak RSS; VmRSS: now)."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def console(database_url: str, env: dict[str, str], log: Path) -> Iterator[ConsoleProcess]:
    """`waihu console` on a free 127.0.0.1 port until the block ends."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "waihu"), "--database", database_url, "console",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the console exited ({process.returncode}): see {log}")
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield ConsoleProcess(url, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
