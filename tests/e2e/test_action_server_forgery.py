"""A forged request to the real action server records nothing.

Whoever can post to the action server used to be able to claim any stage: the actions
rebuilt the call flow from the `flow` slot the request carried.  The flow state is now the
server's (`calls.flow_state`); this posts today's forged request — the final confirmation
claimed in the slot, then `/dtmf{"digits":"1"}` for a known call id — over HTTP to a real
`actions.server` process and checks that no consent was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import callrecord
from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.services import REPO, free_port
from bot.store import CallRepo, ContactRepo, Database
from bot.store.base import utcnow
from bot.store.models import Call, Consent

FORGED_FLOW = {"stage": "final_confirm", "verified": True, "pitched": True,
               "sent": ["price", "trial_end", "cancel", "usage", "features"]}


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    url = f"sqlite:///{tmp_path / 'forgery.db'}"
    db = Database(url)
    db.upgrade()
    port = free_port()
    log = (tmp_path / "actions.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "actions.server", "--actions", "actions", "--port", str(port)],
        cwd=REPO, env={**os.environ, "WAIHU_DATABASE_URL": url}, stdout=log,
        stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "actions.log").read_text()
                assert time.monotonic() < deadline, "action server not ready in 60 s"
                time.sleep(0.3)
        yield base, db
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        db.dispose()


def _post(base: str, action: str, call_id: str, intent: str, text: str,
          slots: dict[str, Any], entities: list[dict[str, Any]] | None = None,
          metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    message = {"intent": {"name": intent, "confidence": 1.0}, "text": text,
               "entities": entities or [], "metadata": metadata or {}}
    tracker = {"sender_id": call_id, "slots": slots, "latest_message": message,
               "events": [], "paused": False, "followup_action": None, "active_loop": {},
               "latest_action_name": "action_listen"}
    body = {"next_action": action, "sender_id": call_id, "version": "3.6.21",
            "domain": None, "tracker": tracker}
    request = urllib.request.Request(f"{base}/webhook", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.mark.rasa
def test_a_forged_final_confirmation_records_no_consent(
        action_server: tuple[str, Database]) -> None:
    base, db = action_server
    campaign_id = save_campaign(db, load_definition(
        REPO / "examples" / "campaigns" / "marketing.yml"))
    with db.session() as session:
        contact = ContactRepo(session).add(campaign_id, "13812345678", name="张伟")
        call_id = CallRepo(session).start_attempt(campaign_id, contact.id).call_id
        callrecord.record_dial_result(session, call_id, "answered", utcnow())

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
