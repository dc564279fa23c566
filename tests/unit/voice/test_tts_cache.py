"""PromptCache with a fake synthesizer: keys, disk storage, recorded overrides, warm-up."""

from __future__ import annotations

import shutil
import wave
from array import array
from pathlib import Path

import pytest

from voice.tts.cache import PcmMemory, PromptCache, normalise
from voice.tts.espeak import EspeakSynthesizer, Synthesizer, read_wav, write_wav


class FakeSynthesizer(Synthesizer):
    """Deterministic PCM: one 10 ms block per character, its value the character's code."""

    def __init__(self, voice: str = "fake") -> None:
        self.voice = voice
        self.calls: list[str] = []
        self.fail_on: set[str] = set()

    @property
    def voice_id(self) -> str:
        return self.voice

    def synthesize(self, text: str) -> bytes:
        self.calls.append(text)
        if text in self.fail_on:
            raise RuntimeError("engine broke")
        return b"".join(array("h", [ord(ch) % 30000] * 80).tobytes() for ch in text)


class StepClock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def fake() -> FakeSynthesizer:
    return FakeSynthesizer()


def test_miss_synthesises_once_and_stores_an_8khz_wav(tmp_path: Path,
                                                      fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path / "cache", fake)
    first = cache.get("您好")
    assert first == fake.synthesize("您好")
    fake.calls.clear()

    assert cache.get("您好") == first
    # A new cache object on the same folder (another process, a restart) reads from disk.
    assert PromptCache(tmp_path / "cache", fake).get("您好") == first
    assert fake.calls == []

    files = list((tmp_path / "cache").glob("*.wav"))
    assert [f.name for f in files] == [f"{cache.key('您好')}.wav"]
    with wave.open(str(files[0])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)


def test_key_is_sha256_of_voice_and_normalised_text(tmp_path: Path,
                                                    fake: FakeSynthesizer) -> None:
    import hashlib

    cache = PromptCache(tmp_path, fake)
    expected = hashlib.sha256("fake\n您好， 张先生".encode()).hexdigest()
    assert cache.key(" 您好，\n 张先生 ") == expected
    assert cache.key("您好") == cache.key("  您好 ")
    assert cache.key("您好") != cache.key("您好。")
    assert cache.key("您好") != PromptCache(tmp_path, FakeSynthesizer("other")).key("您好")


def test_normalise_collapses_whitespace() -> None:
    assert normalise("  a \t b\n") == "a b"


def test_another_voice_synthesises_again(tmp_path: Path, fake: FakeSynthesizer) -> None:
    PromptCache(tmp_path, fake).get("您好")
    other = FakeSynthesizer("other")
    PromptCache(tmp_path, other).get("您好")
    assert other.calls == ["您好"]
    assert len(list(tmp_path.glob("*.wav"))) == 2


def test_recorded_prompt_wins_and_is_resampled(tmp_path: Path, fake: FakeSynthesizer) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_wav(prompts / "utter_greet.wav", array("h", [1000] * 1600).tobytes(), rate=16000)
    cache = PromptCache(tmp_path / "cache", fake, recorded_dir=prompts)

    pcm = array("h", cache.get("您好，我是客服。", response="utter_greet"))
    assert len(pcm) == 800
    assert all(abs(v - 1000) <= 1 for v in pcm[100:700])  # the low-pass only touches the ends
    assert fake.calls == []
    # No recording for this response, or no response given: synthesis.
    cache.get("您好，我是客服。", response="utter_goodbye")
    cache.get("您好，我是客服。")
    assert fake.calls == ["您好，我是客服。"]


def test_recorded_8khz_prompt_is_returned_as_is(tmp_path: Path, fake: FakeSynthesizer) -> None:
    pcm = array("h", range(-400, 400)).tobytes()
    write_wav(tmp_path / "utter_x.wav", pcm)
    assert PromptCache(tmp_path / "c", fake, recorded_dir=tmp_path).get("x", "utter_x") == pcm


def test_response_is_ignored_without_a_recorded_dir(tmp_path: Path,
                                                    fake: FakeSynthesizer) -> None:
    PromptCache(tmp_path, fake).get("好的", response="utter_ok")
    assert fake.calls == ["好的"]


@pytest.mark.parametrize("name", ["../secret", "a/b", "", ".hidden"])
def test_bad_response_name_is_refused(tmp_path: Path, fake: FakeSynthesizer, name: str) -> None:
    cache = PromptCache(tmp_path, fake, recorded_dir=tmp_path)
    with pytest.raises(ValueError, match="bad response name"):
        cache.get("好的", response=name)


def test_corrupt_cache_file_is_synthesised_again(tmp_path: Path, fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path, fake)
    cache.path("好的").write_bytes(b"RIFF\x00garbage")
    assert cache.get("好的") == fake.synthesize("好的")
    assert read_wav(cache.path("好的"))[1] == fake.synthesize("好的")


def test_failed_synthesis_leaves_no_file(tmp_path: Path, fake: FakeSynthesizer) -> None:
    fake.fail_on.add("坏")
    with pytest.raises(RuntimeError, match="engine broke"):
        PromptCache(tmp_path, fake).get("坏")
    assert list(tmp_path.iterdir()) == []


def test_warm_reports_counts_and_timings(tmp_path: Path, fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path, fake, clock=StepClock(0.5))
    cache.get("一")
    fake.fail_on.add("坏")
    fake.calls.clear()

    report = cache.warm(["一", "二", "三", " 二 ", "坏"])
    assert fake.calls == ["二", "三", "坏"]
    assert report == {
        "total": 4, "cached": 1, "synthesised": 2, "failed": 1,
        # Each clock reading advances 0.5 s: start, end, two per synthesis and one for the
        # failed one make seven readings, six steps apart.
        "seconds": pytest.approx(3.0), "slowest_seconds": pytest.approx(0.5),
        "errors": {"坏": "RuntimeError: engine broke"},
    }

    fake.fail_on.clear()
    again = cache.warm(["一", "二", "三", "坏"])
    assert (again["cached"], again["synthesised"], again["failed"]) == (3, 1, 0)
    assert cache.warm([])["total"] == 0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_real_espeak_through_the_cache(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, EspeakSynthesizer())
    report = cache.warm(["您好，请问是张先生吗？", "好的，再见。"])
    assert (report["synthesised"], report["failed"]) == (2, 0)
    pcm = cache.get("好的，再见。")
    assert 0.5 < len(pcm) / 2 / 8000 < 5.0


# --- memory, the text → response index, lookup ------------------------------------------


def test_memory_evicts_least_recently_used_by_bytes() -> None:
    memory = PcmMemory(max_bytes=10)
    memory.put("a", b"1234")
    memory.put("b", b"1234")
    assert memory.get("a") == b"1234"  # a is now the most recently used
    memory.put("c", b"1234")
    assert ("a" in memory, "b" in memory, "c" in memory) == (True, False, True)
    assert memory.bytes == 8
    memory.put("a", b"12")  # replacing counts the new size only
    assert memory.bytes == 6
    memory.put("huge", b"x" * 11)  # larger than the whole budget: not kept, nothing evicted
    assert "huge" not in memory and len(memory) == 2


def test_second_get_is_served_from_memory(tmp_path: Path, fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path, fake)
    first = cache.get("您好")
    cache.path("您好").unlink()  # gone from disk: memory still has it
    assert cache.get("您好") == first
    assert fake.calls == ["您好"]
    assert cache.memory.bytes == len(first)


def test_lookup_never_synthesises(tmp_path: Path, fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path, fake)
    assert cache.lookup("您好") is None
    assert fake.calls == []
    pcm = cache.get("您好")
    assert PromptCache(tmp_path, fake).lookup(" 您好 ") == pcm  # from disk, then memory
    assert fake.calls == ["您好"]


def test_warm_with_responses_lets_the_text_alone_find_the_recording(
        tmp_path: Path, fake: FakeSynthesizer) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    recorded = array("h", [1234] * 800).tobytes()
    write_wav(prompts / "utter_greet.wav", recorded)
    cache = PromptCache(tmp_path / "cache", fake, recorded_dir=prompts)

    report = cache.warm({"您好，我是客服。": "utter_greet", "再见。": "utter_bye"})
    assert fake.calls == ["再见。"]  # the recorded prompt is not synthesised
    assert (report["total"], report["cached"], report["synthesised"]) == (2, 1, 1)
    assert cache.response_for(" 您好，我是客服。") == "utter_greet"
    # The gateway knows only the text:
    assert cache.get("您好，我是客服。") == recorded
    assert cache.lookup("您好，我是客服。") == recorded
    assert cache.lookup("再见。") == fake.synthesize("再见。")
    assert cache.is_recorded("您好，我是客服。") and not cache.is_recorded("再见。")


def test_warm_loads_every_prompt_into_memory(tmp_path: Path, fake: FakeSynthesizer) -> None:
    PromptCache(tmp_path, fake).warm(["一", "二"])
    cache = PromptCache(tmp_path, fake)
    cache.warm(["一", "二", "三"])
    assert len(cache.memory) == 3
    for path in tmp_path.glob("*.wav"):
        path.unlink()
    assert cache.lookup("一") is not None and cache.lookup("三") is not None
    assert PromptCache(tmp_path, fake).warm(["四"], load=False)["synthesised"] == 1


def test_warm_refuses_a_bad_response_name_up_front(tmp_path: Path,
                                                   fake: FakeSynthesizer) -> None:
    cache = PromptCache(tmp_path, fake, recorded_dir=tmp_path)
    with pytest.raises(ValueError, match="bad response name"):
        cache.warm({"好的": "../x"})
    assert fake.calls == []


def test_unreadable_recording_falls_back_to_synthesis(tmp_path: Path,
                                                      fake: FakeSynthesizer) -> None:
    (tmp_path / "utter_x.wav").write_bytes(b"not a wav")
    cache = PromptCache(tmp_path / "c", fake, recorded_dir=tmp_path)
    assert cache.get("好的", "utter_x") == fake.synthesize("好的")
