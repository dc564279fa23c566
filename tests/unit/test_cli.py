"""`waihu` commands that need no Rasa: campaigns, report, ledger audit, clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot import cli as bot_cli
from bot.cli import main
from bot.store import CallRepo, ConsentLedger, ContactRepo, Database
from bot.store.models import Campaign
from voice import cli as voice_cli

REPO = Path(__file__).resolve().parents[2]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_campaign_create_and_list(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", url, "campaign", "create", str(MARKETING), "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "vas-call-alert" and len(created["wording_hash"]) == 64
    assert main(["--database", url, "campaign", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"id": created["id"], "name": "vas-call-alert", "type": "marketing", "status": "draft"}]


def test_invalid_campaign_file_is_explained(url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\ntype: marketing\ncompany: c\nhotline: '1'\n", encoding="utf-8")
    assert main(["--database", url, "campaign", "create", str(bad)]) == 2
    assert "script.price" in capsys.readouterr().err


def _seed_call(db: Database, outcome: str, reason: str | None = None,
               dial: str = "answered") -> None:
    with db.session() as session:
        campaign = session.query(Campaign).one()
        n = len(ContactRepo(session).list(campaign.id))
        contact = ContactRepo(session).add(campaign.id, f"1380000{n:04d}")
        calls = CallRepo(session)
        attempt = calls.start_attempt(campaign.id, contact.id)
        calls.set_dial_result(attempt.call_id, dial)
        if dial == "answered":
            calls.open_call(attempt.call_id)
            calls.record_outcome(attempt.call_id, outcome, reason)


def test_a_missing_key_is_explained_not_a_traceback(url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", url, "campaign", "create", str(MARKETING)]) == 0
    monkeypatch.setenv("WAIHU_KEYS_DIR", str(tmp_path / "no-keys"))
    assert main(["--database", url, "import", "vas-call-alert",
                 str(REPO / "examples" / "lists" / "marketing.csv"),
                 "--rejects", str(tmp_path / "rejects.csv")]) == 2
    assert "waihu keys init" in capsys.readouterr().err


def test_report_figures_on_a_known_database(url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    main(["--database", url, "campaign", "create", str(MARKETING)])
    capsys.readouterr()
    db = Database(url)
    for outcome, reason in [("consented", None), ("consented", None),
                            ("declined", "too_expensive"), ("declined", "distrust"),
                            ("hung_up_early", None)]:
        _seed_call(db, outcome, reason)
    _seed_call(db, "", dial="busy")
    _seed_call(db, "", dial="no_answer")
    _seed_call(db, "", dial="busy")
    assert main(["--database", url, "report", "vas-call-alert", "--format", "json"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert (fig["dialled"], fig["connected"], fig["consents"], fig["declined"]) == (8, 5, 2, 2)
    assert fig["connect_rate"] == 0.625
    assert fig["consent_rate_over_dialled"] == 0.25
    assert fig["consent_rate_over_connected"] == 0.4
    assert fig["declined_after_connect_rate"] == 0.4
    assert fig["hung_up_early"] == 1
    assert fig["dial_results"] == {"answered": 5, "busy": 2, "no_answer": 1}
    assert fig["decline_reasons"] == {"distrust": 1, "too_expensive": 1, "not_needed": 0,
                                      "other": 0}
    assert main(["--database", url, "report", "vas-call-alert"]) == 0
    assert "接通率 62.5%" in capsys.readouterr().out


def test_report_unknown_campaign(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", url, "report", "nope"]) == 2
    assert "no campaign named 'nope'" in capsys.readouterr().err


def test_audit_verify(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--database", url, "campaign", "create", str(MARKETING)])
    db = Database(url)
    _seed_call(db, "consented")
    with db.session() as session:
        call = session.query(Campaign).one()
        attempt = CallRepo(session).start_attempt(call.id, ContactRepo(session).list(call.id)[0].id)
        CallRepo(session).set_dial_result(attempt.call_id, "answered")
        CallRepo(session).open_call(attempt.call_id)
        ConsentLedger(session).append(
            call_id=attempt.call_id, contact_id=attempt.contact_id, campaign_id=call.id,
            product="p", script_hash="a" * 64, disclosures=["price"], utterance="我同意",
            input_mode="text", asr_confidence=None)
    capsys.readouterr()
    assert main(["--database", url, "audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 1


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_waihu_is_the_bot_commands_with_the_voice_ones(url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bot_commands = ["campaign", "import", "report", "audit", "db", "dnc", "keys", "user",
                    "console", "qa", "chat", "demo"]
    assert _commands(bot_cli.build_parser()) == bot_commands
    assert _commands(voice_cli.build_parser()) == [*bot_commands, "simulate", "call", "run",
                                                   "prompts"]
    demo = voice_cli.build_parser().parse_args(["demo", "--asr", "vosk", "--only", "survey"])
    assert (demo.func, demo.asr, demo.only, demo.text) == (voice_cli.cmd_demo, "vosk",
                                                           "survey", False)
    assert voice_cli.main(["--database", url, "campaign", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bot_cli_alone_runs_the_demo_as_text_only(url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", url, "demo"]) == 2  # refused before Rasa starts
    assert "--text" in capsys.readouterr().err


def test_dnc_add_list_import_remove(url: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database", url, "dnc", "add", "138-1234-5678", "--reason", "客户要求",
                 "--by", "ops", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phone"] == "13812345678"
    assert main(["--database", url, "dnc", "add", "abc", "--reason", "x", "--by", "ops"]) == 2
    assert "waihu dnc add:" in capsys.readouterr().err
    listing = tmp_path / "dnc.csv"
    listing.write_text("手机号\n13900000001\n13812345678\n=1+1\n", encoding="utf-8")
    assert main(["--database", url, "dnc", "import", str(listing), "--by", "ops",
                 "--json"]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert (imported["added"], imported["already_listed"]) == (1, 1)
    assert [r["line"] for r in imported["rejected"]] == [4]
    assert main(["--database", url, "dnc", "list", "--json"]) == 0
    assert {e["phone"] for e in json.loads(capsys.readouterr().out)} == {
        "13812345678", "13900000001"}
    assert main(["--database", url, "dnc", "remove", "13812345678", "--reason", "误加",
                 "--by", "ops"]) == 0
    assert "1 entry removed" in capsys.readouterr().out
    assert main(["--database", url, "dnc", "remove", "13812345678", "--reason", "again",
                 "--by", "ops"]) == 1
