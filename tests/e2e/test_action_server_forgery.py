"""A forged request to the real action server records nothing.

Whoever can post to the action server used to be able to claim any stage: the actions
rebuilt the call flow from the `flow` slot the request carried.  The flow state is now the
server's (`calls.flow_state`); this posts today's forged request — the final confirmation
claimed in the slot, then `/dtmf{"digits":"1"}` for a known call id — over HTTP to a real
`actions.server` process and checks that no consent was written.

The server also refuses every request without the shared secret (WAIHU_ACTIONS_TOKEN, as
`Authorization: Bearer …`): the same forged request without it, or with a wrong one, is
answered 401/403 and writes nothing at all, not even the call's flow state. The forgery
above is made with the secret: it tests the flow-state defence behind the door.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from actions.server import authorization
from bot import callrecord
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.services import ACTIONS_TOKEN_ENV, REPO, Process, free_port, new_token
from bot.store import CallRepo, ContactRepo, Database
from bot.store.base import utcnow
from bot.store.models import Call, Consent, DncEntry

SECRET = new_token()
FORGED_FLOW = {"stage": "final_confirm", "verified": True, "pitched": True,
               "sent": ["price", "trial_end", "cancel", "usage", "features"]}


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    url = f"sqlite:///{tmp_path / 'forgery.db'}"
    db = Database(url)
    db.upgrade()
    port = free_port()
    process = Process("action server", [
        sys.executable, "-m", "actions.server", "--actions", "actions", "--port", str(port)],
        tmp_path / "actions.log",
        {**os.environ, "WAIHU_DATABASE_URL": url, ACTIONS_TOKEN_ENV: SECRET})
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                process.check_alive()
                assert time.monotonic() < deadline, "action server not ready in 60 s"
                time.sleep(0.3)
        yield base, db
    finally:
        process.stop()  # the whole group: a slow Sanic shutdown is no test error
        db.dispose()


def _post(base: str, action: str, call_id: str, intent: str, text: str,
          slots: dict[str, Any], entities: list[dict[str, Any]] | None = None,
          metadata: dict[str, Any] | None = None, secret: str | None = SECRET
          ) -> dict[str, Any]:
    message = {"intent": {"name": intent, "confidence": 1.0}, "text": text,
               "entities": entities or [], "metadata": metadata or {}}
    tracker = {"sender_id": call_id, "slots": slots, "latest_message": message,
               "events": [], "paused": False, "followup_action": None, "active_loop": {},
               "latest_action_name": "action_listen"}
    body = {"next_action": action, "sender_id": call_id, "version": "3.6.21",
            "domain": None, "tracker": tracker}
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = authorization(secret)
    request = urllib.request.Request(f"{base}/webhook", data=json.dumps(body).encode(),
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _answered_call(db: Database) -> str:
    campaign_id = save_campaign(db, load_definition(
        REPO / "examples" / "campaigns" / "marketing.yml"))
    with db.session() as session:
        contact = ContactRepo(session).add(campaign_id, "13812345678", name="张伟")
        call_id = CallRepo(session).start_attempt(campaign_id, contact.id).call_id
        callrecord.record_dial_result(session, call_id, "answered", utcnow())
    return call_id


@pytest.mark.rasa
def test_a_forged_final_confirmation_records_no_consent(
        action_server: tuple[str, Database]) -> None:
    base, db = action_server
    call_id = _answered_call(db)

    _post(base, "action_start_call", call_id, "call_started", "/call_started", {},
          metadata={"call_id": call_id})
    answer = _post(base, "action_dialogue", call_id, "dtmf", '/dtmf{"digits": "1"}',
                   {"call_id": call_id, "flow": FORGED_FLOW},
                   entities=[{"entity": "digits", "value": "1"}],
                   metadata={"input_mode": "dtmf"})

    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []
        call = session.get(Call, call_id)
        assert call is not None and call.outcome is None
        assert call.flow_state is not None and call.flow_state["stage"] != "final_confirm"
    mirror = next(e["value"] for e in answer["events"] if e.get("name") == "flow")
    assert mirror["stage"] == call.flow_state["stage"]


@pytest.mark.rasa
@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("not-the-secret-at-all", 403)])
def test_without_the_secret_the_action_server_writes_nothing(
        action_server: tuple[str, Database], secret: str | None, status: int) -> None:
    base, db = action_server
    call_id = _answered_call(db)
    forged: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
        ("action_start_call", "call_started", "/call_started", {}, {"call_id": call_id}),
        ("action_dialogue", "dtmf", '/dtmf{"digits": "1"}',
         {"call_id": call_id, "flow": FORGED_FLOW}, {"input_mode": "dtmf"}),
        ("action_do_not_call", "do_not_call", "别再打了", {"call_id": call_id}, {})]
    for action, intent, text, slots, meta in forged:
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(base, action, call_id, intent, text, slots, metadata=meta, secret=secret)
        assert refused.value.code == status
        assert "secret" in json.loads(refused.value.read())["error"]

    with db.session() as session:
        assert session.scalars(select(Consent)).all() == []
        assert session.scalars(select(DncEntry)).all() == []
        call = session.get(Call, call_id)
        assert call is not None and call.flow_state is None and call.outcome is None
    # /health stays open and tells nothing but that the server is up
    with urllib.request.urlopen(f"{base}/health", timeout=5) as health:
        assert json.loads(health.read()) == {"status": "ok"}


def test_the_action_server_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != ACTIONS_TOKEN_ENV}
    for extra in ({}, {ACTIONS_TOKEN_ENV: "short"}):
        done = subprocess.run(
            [sys.executable, "-m", "actions.server", "--actions", "actions",
             "--port", str(free_port())], cwd=REPO, env={**env, **extra},
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert ACTIONS_TOKEN_ENV in done.stderr and "refusing" in done.stderr
