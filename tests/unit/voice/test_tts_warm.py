"""warm_campaign and `waihu prompts warm`: a campaign's prompts end up in the cache."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.store import CampaignRepo, ContactRepo, Database
from tests.unit.voice.test_gateway_prompts import NamedTone
from tests.unit.voice.test_tts_worker import ToneSynthesizer
from voice.session import SessionConfig
from voice.tts.cache import PromptCache
from voice.tts.warm import main, warm_campaign

CAMPAIGNS = Path(__file__).resolve().parents[3] / "examples" / "campaigns"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def tone(voice: object) -> ToneSynthesizer:
    """Every campaign's voice is the test tone (the real ones are Kokoro's: slow)."""
    return ToneSynthesizer()


def test_warm_a_stored_campaign_with_its_contacts(db: Database, tmp_path: Path) -> None:
    defn = load_definition(CAMPAIGNS / "marketing.yml")
    save_campaign(db, defn)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(defn.name)
        assert campaign is not None
        ContactRepo(session).add(campaign.id, "13800000001", name="张伟", gender="男")
    cache = PromptCache(tmp_path, ToneSynthesizer())
    report = warm_campaign(db, defn.name, cache, now=NOW, days=2, processes=1, contacts=True,
                           voices=tone)
    assert report["campaign"] == defn.name
    assert report["wordings"] == 2  # one contact, two calling days (trial end moves)
    assert report["prompts"] == report["total"] == report["synthesised"] == 62  # 3: the gateway's
    assert report["dynamic"] == ["utter_callback_confirm"]
    assert report["by_response"]["utter_disclose_trial"] == 2
    assert cache.lookup("请问您是张先生本人吗？") is not None
    assert cache.response_for("请问您是张先生本人吗？") == "utter_ask_identity"
    again = warm_campaign(db, defn.name, cache, now=NOW, days=2, processes=1, contacts=True,
                          voices=tone)
    assert (again["cached"], again["synthesised"]) == (62, 0)


def test_without_contacts_only_the_fixed_prompts_are_warmed(db: Database,
                                                             tmp_path: Path) -> None:
    """A contact's own address is synthesised when the gateway claims it, not before."""
    defn = load_definition(CAMPAIGNS / "marketing.yml")
    save_campaign(db, defn)
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(defn.name)
        assert campaign is not None
        ContactRepo(session).add(campaign.id, "13800000001", name="张伟", gender="男")
    cache = PromptCache(tmp_path, ToneSynthesizer())
    report = warm_campaign(db, defn.name, cache, now=NOW, days=2, processes=1, voices=tone)
    assert (report["contacts"], report["wordings"]) == (False, 2)  # 机主 on two days
    assert cache.lookup("请问您是机主本人吗？") is not None
    assert cache.lookup("请问您是张先生本人吗？") is None


def test_the_campaigns_voice_speaks(tmp_path: Path) -> None:
    """The prompts go into the cache folder in the voice the campaign asks for."""
    heard: list[object] = []

    def voices(voice: object) -> ToneSynthesizer:
        heard.append(voice)
        return NamedTone("male")

    cache = PromptCache(tmp_path, ToneSynthesizer())
    report = warm_campaign(None, CAMPAIGNS / "notification.yml", cache, now=NOW, days=1,
                           processes=1, voices=voices)
    assert heard == [load_definition(CAMPAIGNS / "notification.yml").voice]
    assert report["voice"] == "tone/male"
    male = PromptCache(tmp_path, NamedTone("male"))
    assert male.path(SessionConfig().failure_text).exists()
    assert not cache.path(SessionConfig().failure_text).exists()


def test_warm_from_a_definition_file_without_a_database(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, ToneSynthesizer())
    report = warm_campaign(None, CAMPAIGNS / "survey.yml", cache, now=NOW, days=1,
                           processes=1, voices=tone)
    assert report["source"].startswith("file ")
    assert report["prompts"] == 44 and report["failed"] == 0  # 机主 only, no contacts


def test_unknown_campaign(db: Database, tmp_path: Path) -> None:
    with pytest.raises(LookupError):
        warm_campaign(db, "nope", PromptCache(tmp_path, ToneSynthesizer()), voices=tone)


def test_main_prints_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voice.tts.warm.synthesizer", tone)
    monkeypatch.setattr("voice.tts.warm.synthesizer_for", tone)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    args = ["--database", url, "--cache-dir", str(tmp_path / "cache"), "--processes", "1"]
    assert main([str(CAMPAIGNS / "notification.yml"), *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["synthesised"] == report["prompts"] > 30
    assert main(["nope", *args]) == 2
    assert "no campaign named 'nope'" in capsys.readouterr().err


def test_the_failure_line_is_warmed_with_the_campaign(tmp_path: Path) -> None:
    """It is said when Rasa cannot be reached: it must not need a synthesis then."""
    from voice.session import SessionConfig

    cache = PromptCache(tmp_path, ToneSynthesizer())
    warm_campaign(None, CAMPAIGNS / "marketing.yml", cache, now=NOW, days=1, processes=1,
                  voices=tone)
    for text in (SessionConfig().failure_text, SessionConfig().no_agent_text):
        assert cache.path(text).exists(), text
