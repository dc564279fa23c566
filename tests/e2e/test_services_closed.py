"""Nobody gets in through the services: the real Rasa server and action server of a
`RasaStack` refuse whoever lacks their secrets, and listen on 127.0.0.1 only.

Rasa's `--auth-token` guards its HTTP API but not the channel webhooks; the telephone's
channel (waihu_rasa/channel.py) checks the same token. A customer turn posted for a live
call without it (or with a wrong one) is refused and reaches neither Rasa's tracker nor
the call's record; with it, the call goes on.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.channel import dtmf_message
from bot.services import RasaStack
from bot.store import ContactRepo, Database
from bot.store.models import Call, Consent, TranscriptTurn
from bot.textcall import TextCall

pytestmark = pytest.mark.rasa
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RasaStack, Database]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('closed') / 'closed.db'}"
    db = Database(url)
    db.upgrade()
    with RasaStack(url) as running:
        yield running, db
    db.dispose()


def _request(url: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _with_token(url: str, token: str | None) -> str:
    return url if token is None else f"{url}?{urllib.parse.urlencode({'token': token})}"


def _user_events(running: RasaStack, sender: str) -> int:
    status, tracker = _request(_with_token(
        f"{running.rasa_url}/conversations/{sender}/tracker", running.rasa_token))
    assert status == 200, tracker
    return sum(1 for e in tracker["events"] if e["event"] == "user")


async def _started_call(running: RasaStack, db: Database) -> str:
    campaign_id = save_campaign(db, load_definition(
        REPO / "examples" / "campaigns" / "marketing.yml"))
    with db.session() as session:
        contacts = ContactRepo(session)
        contact_id = (contacts.by_phone(campaign_id, "13812340000")
                      or contacts.add(campaign_id, "13812340000", name="张伟")).id
    async with aiohttp.ClientSession() as http:
        call_id, call = TextCall.dial(running.endpoint.channel(http), db, campaign_id,
                                      contact_id)
        assert call is not None
        reply = await call.start()
        assert reply.texts, "the bot greets a call started with the token"
    return call_id


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong-token-0123456789", 403)])
async def test_a_customer_turn_without_the_rasa_token_is_refused_and_not_processed(
        stack: tuple[RasaStack, Database], token: str | None, status: int) -> None:
    running, db = stack
    call_id = await _started_call(running, db)
    with db.session() as session:
        turns_before = len(session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == call_id)).all())
        flow_before = session.get(Call, call_id).flow_state  # type: ignore[union-attr]
    heard_before = _user_events(running, call_id)

    webhook = _with_token(f"{running.rasa_url}/webhooks/waihu/webhook", token)
    for message in ("是我", dtmf_message("1"), "/call_started"):
        got, body = _request(webhook, {"sender": call_id, "message": message,
                                       "metadata": {"input_mode": "dtmf"}})
        assert got == status, body
        assert "token" in body["error"]
    # The stock REST channel is not there to go round the check.
    got, _ = _request(f"{running.rasa_url}/webhooks/rest/webhook",
                      {"sender": call_id, "message": "是我"})
    assert got == 404

    assert _user_events(running, call_id) == heard_before
    with db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None and call.flow_state == flow_before
        assert len(session.scalars(select(TranscriptTurn).where(
            TranscriptTurn.call_id == call_id)).all()) == turns_before
        assert session.scalars(select(Consent)).all() == []

    # With the token the same call goes on.
    got, replies = _request(_with_token(f"{running.rasa_url}/webhooks/waihu/webhook",
                                        running.rasa_token),
                            {"sender": call_id, "message": "是我",
                             "metadata": {"input_mode": "text"}})
    assert got == 200 and replies
    assert _user_events(running, call_id) == heard_before + 1


def test_the_rasa_http_api_asks_for_the_token(stack: tuple[RasaStack, Database]) -> None:
    running, _ = stack
    parse = f"{running.rasa_url}/model/parse"
    assert _request(parse, {"text": "你好"})[0] == 401
    assert _request(_with_token(parse, "wrong-token-0123456789"), {"text": "你好"})[0] == 401
    status, parsed = _request(_with_token(parse, running.rasa_token), {"text": "你好"})
    assert status == 200 and parsed["intent"]["name"]
    assert _request(f"{running.rasa_url}/conversations/any/tracker")[0] == 401


def test_the_action_server_refuses_rasa_s_callers_without_its_secret(
        stack: tuple[RasaStack, Database]) -> None:
    running, _ = stack
    body = {"next_action": "action_start_call", "sender_id": "x", "version": "3.6.21",
            "domain": None, "tracker": {"sender_id": "x", "slots": {}, "events": [],
                                        "latest_message": {}}}
    status, answer = _request(f"{running.actions_url}/webhook", body)
    assert status == 401 and "secret" in answer["error"]
    status, _ = _request(f"{running.actions_url}/webhook", body,
                         {"Authorization": "Bearer wrong-secret-0123456789"})
    assert status == 403
    assert _request(f"{running.actions_url}/actions")[0] == 401
    assert _request(f"{running.actions_url}/health") == (200, {"status": "ok"})


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets listening in *pid* and its descendants, read
    from /proc (IPv4 and IPv6)."""
    pids = {pid}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            new = {int(c) for c in children} - pids
            pids |= new
            frontier += new
    inodes: set[str] = set()
    for p in pids:
        for fd in Path(f"/proc/{p}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            address, port = local.split(":")
            found.add((_address(address, v6), int(port, 16)))
    return found


def _address(hex_address: str, v6: bool) -> str:
    raw = bytes.fromhex(hex_address)
    # /proc prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words if v6 else raw[::-1]))


def test_both_servers_listen_on_127_0_0_1_only(stack: tuple[RasaStack, Database]) -> None:
    running, _ = stack
    actions, rasa = running.processes
    assert actions.popen is not None and rasa.popen is not None
    for pid, name, port in ((actions.popen.pid, actions.name, running.actions_port),
                            (rasa.popen.pid, rasa.name, running.rasa_port)):
        sockets = _listening(pid)
        assert ("127.0.0.1", port) in sockets, (name, sockets)
        assert {address for address, _ in sockets} == {"127.0.0.1"}, (name, sockets)
