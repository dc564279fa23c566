"""The bot's voice as a campaign setting: validation, the default, the fallback to espeak-ng."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.campaigns.definition import (
    DEFAULT_KOKORO_VOICE,
    KOKORO_VOICES,
    BotVoice,
    CampaignFileError,
    load_definition,
    parse_definition,
)
from voice.tts import kokoro
from voice.tts.espeak import EspeakSynthesizer
from voice.tts.kokoro import KokoroSynthesizer
from voice.tts.voices import DEFAULT, synthesizer, synthesizer_for

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "campaigns"
NOTICE = {"name": "n", "type": "notification", "company": "c", "hotline": "10010",
          "script": {"notice_text": "明天停水。"}}


def test_the_default_voice_is_kokoros_female_voice() -> None:
    defn = parse_definition(NOTICE)
    assert defn.voice == BotVoice() == DEFAULT
    assert (defn.voice.engine, defn.voice.name, defn.voice.speed) == (
        "kokoro", DEFAULT_KOKORO_VOICE, 1.0)
    assert KOKORO_VOICES[DEFAULT_KOKORO_VOICE] == "female"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yml")), ids=lambda p: p.stem)
def test_the_sample_campaigns_speak_with_the_default(path: Path) -> None:
    assert load_definition(path).voice == DEFAULT


def test_a_male_voice_and_espeak_can_be_chosen() -> None:
    male = parse_definition({**NOTICE, "voice": {"name": "zm_yunxi", "speed": 0.9}}).voice
    assert (male.engine, male.name, male.speed) == ("kokoro", "zm_yunxi", 0.9)
    assert KOKORO_VOICES["zm_yunxi"] == "male"
    robot = parse_definition({**NOTICE, "voice": {"engine": "espeak"}}).voice
    assert (robot.engine, robot.name) == ("espeak", "cmn-latn-pinyin")


@pytest.mark.parametrize(("voice", "message"), [
    ({"name": "zf_xiaobei"}, "voice.name: .*no kokoro voice 'zf_xiaobei': choose "
                             "zf_xiaoyi \\(female\\) or zm_yunxi \\(male\\)"),
    ({"engine": "espeak", "name": "zm_yunxi"}, "voice.name: .*no espeak voice 'zm_yunxi'"),
    ({"engine": "piper"}, "voice.engine: Input should be 'kokoro' or 'espeak'"),
    ({"speed": 2}, "voice.speed: Input should be less than or equal to 1.3"),
    ({"voice": "zf_xiaoyi"}, "voice.voice: Extra inputs are not permitted"),
])
def test_mistakes_are_named(voice: dict[str, object], message: str) -> None:
    with pytest.raises(CampaignFileError, match=message):
        parse_definition({**NOTICE, "voice": voice})


def test_the_bots_voices_are_prepared_by_setup_and_not_the_customers() -> None:
    """Every voice a campaign may choose is extracted by `python -m voice.tts.kokoro
    prepare` (sha256 known); none is the virtual customers' voice, so the two sides of a
    recording can be told apart."""
    assert set(KOKORO_VOICES) <= set(kokoro.VOICES)
    assert kokoro.DEFAULT_VOICE not in KOKORO_VOICES


def test_synthesizers_and_their_cache_keys() -> None:
    female = synthesizer(DEFAULT)
    assert isinstance(female, KokoroSynthesizer)
    assert female.voice_id.startswith("kokoro-v1.0-int8/zf_xiaoyi/speed1/frontend")
    slow_male = synthesizer(BotVoice(name="zm_yunxi", speed=0.9))
    assert "zm_yunxi/speed0.9" in slow_male.voice_id
    robot = synthesizer(BotVoice(engine="espeak", speed=1.2))
    assert isinstance(robot, EspeakSynthesizer)
    assert (robot.voice, robot.rate) == ("cmn-latn-pinyin", 204)


def test_kokoro_not_prepared_falls_back_to_espeak_with_a_clear_log_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WAIHU_KOKORO_VOICES", str(tmp_path))  # an empty voices folder
    with caplog.at_level(logging.WARNING, logger="waihu.tts"):
        voice = synthesizer_for(BotVoice(speed=0.9))
    assert isinstance(voice, EspeakSynthesizer) and voice.rate == 153
    line = caplog.records[-1].getMessage()
    assert line.startswith("tts.voice_fallback voice=kokoro/zf_xiaoyi using=espeak-ng")
    assert "zf_xiaoyi is not prepared" in line and "python -m voice.tts.kokoro prepare" in line


def test_kokoro_packages_missing_fall_back_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "misaki" else find_spec(name, *a))
    assert kokoro.unavailable("zf_xiaoyi") == "package misaki is not installed"
    assert isinstance(synthesizer_for(DEFAULT), EspeakSynthesizer)


def test_a_prepared_voice_is_used() -> None:
    if kokoro.unavailable(DEFAULT_KOKORO_VOICE):
        pytest.skip("Kokoro not prepared here (python -m voice.tts.kokoro prepare)")
    assert isinstance(synthesizer_for(DEFAULT), KokoroSynthesizer)
    assert synthesizer_for(BotVoice(engine="espeak")).voice_id.startswith("espeak-ng/")
