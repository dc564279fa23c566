"""bench/asr.py's pure parts: line noise at a given SNR, CER, false-snap counting, and the
question each persona reply is heard at."""

from __future__ import annotations

import numpy as np
import pytest

from bench.asrbench.audio import add_noise, line, samples, speech_power, to_pcm
from bench.asrbench.corpus import Question, assign, gateway_hints, listens
from bench.asrbench.score import Heard, cer, false_snap, summarise
from voice.asr.base import Hints

RATE = 8000


def tone(seconds: float, amplitude: float = 8000.0, silence_s: float = 0.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    speech = amplitude * np.sin(2 * np.pi * 440 * t)
    quiet = np.zeros(int(silence_s * RATE))
    return to_pcm(np.concatenate([quiet, speech, quiet]))


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [15.0, 5.0])
def test_noise_sits_at_the_asked_snr_below_the_speech(kind: str, snr_db: float) -> None:
    clean = tone(1.0, silence_s=0.5)  # silences around it must not lower the level
    noisy = add_noise(clean, snr_db, kind, seed=1)
    added = samples(noisy) - samples(clean)
    speech = samples(tone(1.0))
    measured = 10 * np.log10(float((speech ** 2).mean()) / float((added ** 2).mean()))
    assert measured == pytest.approx(snr_db, abs=0.3)
    assert np.abs(added[:2000]).max() > 0  # the silences carry the line noise too


def test_speech_power_ignores_the_silence_around_the_speech() -> None:
    assert speech_power(samples(tone(1.0, silence_s=1.0))) == pytest.approx(
        speech_power(samples(tone(1.0))), rel=0.02)


def test_pink_noise_has_more_power_low_than_high() -> None:
    clean = tone(2.0)
    added = samples(add_noise(clean, 10.0, "pink", seed=3)) - samples(clean)
    spectrum = np.abs(np.fft.rfft(added)) ** 2
    freqs = np.fft.rfftfreq(len(added), 1 / RATE)
    low = spectrum[(freqs > 100) & (freqs < 200)].mean()
    high = spectrum[(freqs > 3000) & (freqs < 3100)].mean()
    assert low > 10 * high


def test_the_line_is_reproducible_per_clip_and_differs_between_clips() -> None:
    clean = tone(0.5)
    first = line(clean, "pcma", 15.0, "pink", "zf_xiaobei\n是的")
    assert first == line(clean, "pcma", 15.0, "pink", "zf_xiaobei\n是的")
    assert first != line(clean, "pcma", 15.0, "pink", "zf_xiaobei\n好的")
    assert line(clean, "pcma", None, "pink", "x") != clean  # A-law still quantises


def test_cer_counts_characters_as_spoken_over_all_replies() -> None:
    rows = [heard("明天上午十点吧", raw="明天上午10点吧"),  # numbers by value: no error
            heard("我同意", raw="我不同意")]  # one insertion in 3 + 8 characters (十 is 10)
    assert cer(rows) == pytest.approx(1 / 11, abs=1e-4)  # rounded to 4 places


FREE = Hints()
YES_NO = Hints("yes_no", ("我同意", "确认", "不需要", "别再打了", "是的"))


def heard(reference: str, raw: str = "", text: str | None = None, *,
          hints: Hints = FREE, question: str = "q", unclear: bool = False) -> Heard:
    return Heard(reference, question, hints, raw or reference,
                 raw or reference if text is None else text, unclear, 0.1)


def test_false_snaps_count_out_of_list_replies_that_came_out_as_a_phrase() -> None:
    assert false_snap(heard("你们是做什么的", text="我同意", hints=YES_NO)) == "consent"
    assert false_snap(heard("你们是做什么的", text="别再打了", hints=YES_NO)) == "do_not_call"
    assert false_snap(heard("你们是做什么的", text="不需要", hints=YES_NO)) == "other"
    # A yes at the do-not-call confirmation is the entry itself.
    assert false_snap(heard("你们是做什么的", text="是的", hints=YES_NO,
                            question="utter_confirm_dnc")) == "do_not_call"


def test_no_false_snap_when_the_reply_was_in_the_list_or_nothing_was_taken() -> None:
    assert false_snap(heard("我同意", text="确认", hints=YES_NO)) is None  # misheard, in list
    assert false_snap(heard("你们是做什么的", text="", hints=YES_NO, unclear=True)) is None
    assert false_snap(heard("你们是做什么的", text="你们是做什么的", hints=YES_NO)) is None
    assert false_snap(heard("随便", text="我同意", hints=Hints("free", ("我同意",)))) is None
    # The phrase was said, within more words: the snap took what the customer said.
    assert false_snap(heard("好的那我同意吧", text="我同意", hints=YES_NO)) is None


def test_summary_counts_snap_accuracy_on_in_list_replies_and_false_snaps_apart() -> None:
    rows = [heard("我同意", raw="我同意", hints=YES_NO),
            heard("确认", raw="却任", text="确认", hints=YES_NO),
            heard("不需要", raw="不需", text="不需", hints=YES_NO),
            heard("你们是做什么的", raw="我同意", hints=YES_NO)]
    figures = summarise(rows)
    assert figures["exact_rate"] == 0.25
    assert figures["in_list"] == 3 and figures["snap_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["false_snaps"]["out_of_list"] == 1
    assert figures["false_snaps"]["consent"] == 1 and figures["false_snaps"]["do_not_call"] == 0


def test_replies_are_heard_with_the_hints_of_the_question_they_answer() -> None:
    payloads = listens()
    names = ("utter_ask_identity", "utter_ask_permission_marketing", "utter_ask_consent",
             "utter_confirm_dnc", "utter_ask_family_authority")
    questions = [Question(n, gateway_hints(payloads[n])) for n in names]
    said = assign(["是的是我", "方便", "别再打了", "是的", "明天上午十点吧"], questions)
    assert [q.name if q else None for _, q in said] == [
        "utter_ask_identity", "utter_ask_permission_marketing", "utter_ask_consent",
        "utter_confirm_dnc", None]
    # The control phrases join every list, as the gateway adds them.
    assert "别再打了" in said[1][1].hints.phrases  # type: ignore[union-attr]
    family = assign(["我是他爸爸", "可以"], questions)
    assert family[1][1] is not None and family[1][1].name == "utter_ask_family_authority"
