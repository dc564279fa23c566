"""Automatic review flags on constructed calls: each rule flags its case and leaves a clean
call alone; the view of a stored call recognises the bot's responses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.campaigns.definition import parse_definition
from bot.qa.callview import call_view
from bot.qa.flags import (
    CUT_OFF_SUFFIX,
    SKIPPED_NOTE,
    TALKED_OVER_NOTE,
    TALKED_OVER_TWICE_NOTE,
    CallView,
    ConsentMark,
    Flag,
    Turn,
    flags,
)
from bot.store import CallRepo, ConsentLedger, Database

from .seeding import add_call, add_campaign

REPO = Path(__file__).resolve().parents[3]
AT_10 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
REQUIRED = frozenset({"features", "price", "usage", "cancel"})
DEFINITION = parse_definition({
    "name": "ringtone", "type": "marketing", "company": "中国移动", "hotline": "10086",
    "script": {"product": "彩铃", "price": "每月5元", "cancel_method": "发短信TD",
               "usage": "来电时播放", "features": "个性彩铃"}})


def bot(seq: int, ms: int, response: str, text: str = "…") -> Turn:
    return Turn(seq, "bot", text, ms, ms + 2000, response=response)


def customer(seq: int, ms: int, text: str, intent: str | None = None) -> Turn:
    return Turn(seq, "customer", text, ms, ms + 1000, intent=intent, input_mode="speech",
                asr_confidence=0.9)


PITCH = (bot(7, 16000, "utter_disclose_features"), bot(8, 18000, "utter_disclose_price"),
         bot(9, 20000, "utter_disclose_usage"), bot(10, 22000, "utter_disclose_cancel"),
         bot(11, 24000, "utter_ask_consent"), customer(12, 26500, "好的我同意", "agree"))
CLEAN = CallView(
    call_id="c1", started_at=AT_10, outcome="consented", required_disclosures=REQUIRED,
    definition=DEFINITION, verified=True,
    consents=(ConsentMark(26500, "speech", 0.9, tuple(sorted(REQUIRED))),),
    turns=(bot(1, 0, "utter_greeting"), bot(2, 2000, "utter_ask_identity"),
           customer(3, 4500, "是的", "affirm"), bot(4, 6000, "utter_ask_permission_marketing"),
           customer(5, 8500, "可以你说", "affirm"), bot(6, 10000, "utter_go_on"), *PITCH))


def kinds(call: CallView) -> list[tuple[str, int]]:
    return [(f.kind, f.at_ms) for f in flags(call)]


def test_a_clean_call_has_no_flag() -> None:
    assert flags(CLEAN) == []


def test_a_disclosure_talked_over_or_cut_off() -> None:
    talked_over = replace(CLEAN, turns=(*CLEAN.turns[:7],
                                        Turn(99, "system", TALKED_OVER_NOTE, 18100),
                                        *CLEAN.turns[7:]))
    [flag] = flags(talked_over)
    assert (flag.kind, flag.at_ms, flag.detail) == ("disclosure_cut_short", 18100,
                                                    "talked over and repeated: price")
    assert (flag.label_zh, flag.label_en) == ("声明被打断", "disclosure cut short")
    cut = replace(CLEAN, turns=tuple(
        replace(t, text="资费" + CUT_OFF_SUFFIX) if t.response == "utter_disclose_price" else t
        for t in CLEAN.turns))
    # cut off, and so never said in full before the consent
    assert kinds(cut) == [("disclosure_cut_short", 18000), ("disclosure_missing", 26500)]


def test_the_gateway_notes_of_disclosures_not_heard_in_full() -> None:
    """CLEAN.turns[7] is the price, said at 18000: talked over twice (the note follows its
    turn), it is not heard until said again in full; never said after a barge-in, it is."""
    twice = (Turn(99, "system", TALKED_OVER_NOTE, 19000), CLEAN.turns[7],
             Turn(100, "system", TALKED_OVER_TWICE_NOTE + "：price", 18000,
                  unheard_disclosures=("price",)))
    talked_over = replace(CLEAN, turns=(*CLEAN.turns[:7], *twice, *CLEAN.turns[8:]))
    assert [(f.kind, f.at_ms, f.detail) for f in flags(talked_over)] == [
        ("disclosure_cut_short", 18000, "talked over twice: price"),
        ("disclosure_missing", 26500, "not said: price")]
    said_again = replace(talked_over, turns=(*CLEAN.turns[:7], *twice, *CLEAN.turns[7:]))
    assert kinds(said_again) == [("disclosure_cut_short", 18000)]
    skipped = replace(CLEAN, turns=(*CLEAN.turns[:7], Turn(
        99, "system", SKIPPED_NOTE + "：usage", 18500, unheard_disclosures=("usage",)),
        *CLEAN.turns[7:]))
    assert [(f.kind, f.detail) for f in flags(skipped)] == [
        ("disclosure_cut_short", "never said after a barge-in: usage")]  # said later


def test_a_consent_without_every_disclosure() -> None:
    no_cancel = replace(CLEAN, turns=tuple(t for t in CLEAN.turns
                                           if t.response != "utter_disclose_cancel"))
    [flag] = flags(no_cancel)
    assert (flag.kind, flag.at_ms, flag.detail) == ("disclosure_missing", 26500,
                                                    "not said: cancel")
    ledger = replace(CLEAN, consents=(ConsentMark(26500, "speech", 0.9, ("features",)),))
    assert "ledger" in flags(ledger)[0].detail
    declined = replace(no_cancel, outcome="declined", consents=())
    assert flags(declined) == []  # an unfinished pitch the customer refused is no fault


def test_a_consent_heard_unclearly() -> None:
    for mark in (ConsentMark(26500, "speech", 0.5, tuple(REQUIRED)),
                 ConsentMark(26500, "speech", None, tuple(REQUIRED)),
                 ConsentMark(26500, "speech", 0.95, tuple(REQUIRED), asr_snapped=True)):
        assert kinds(replace(CLEAN, consents=(mark,))) == [("consent_unclear", 26500)]
    keyed = ConsentMark(26500, "dtmf", None, tuple(REQUIRED))
    assert flags(replace(CLEAN, consents=(keyed,))) == []


def test_a_pitch_before_the_right_person_or_permission() -> None:
    no_identity = replace(CLEAN, turns=(CLEAN.turns[0], *CLEAN.turns[3:]))
    assert kinds(no_identity) == [("pitch_before_right_person", 16000)]
    friend = replace(CLEAN, turns=tuple(replace(t, intent="wrong_person") if t.seq == 3 else t
                                        for t in CLEAN.turns))
    assert kinds(friend) == [("pitch_before_right_person", 16000)]
    assert kinds(replace(CLEAN, verified=False)) == [("pitch_before_right_person", 16000)]
    no_permission = replace(CLEAN, turns=(*CLEAN.turns[:3], *CLEAN.turns[5:]))
    assert kinds(no_permission) == [("pitch_before_permission", 16000)]
    asked_price = replace(CLEAN, turns=tuple(replace(t, intent="ask_price") if t.seq == 5
                                             else t for t in CLEAN.turns))
    assert flags(asked_price) == []  # asking the price is asking to hear it


def test_a_pitch_after_repeated_not_understood() -> None:
    lost = (customer(20, 8500, "你说什么", "not_understand"), bot(21, 9000, "utter_sorry_repeat"),
            customer(22, 11500, "没听清", "not_understand"), bot(23, 12000, "utter_sorry_repeat"))
    confused = replace(CLEAN, turns=(*CLEAN.turns[:5], *lost, *CLEAN.turns[5:]))
    assert kinds(confused) == [("pitch_after_not_understood", 16000)]
    once = replace(CLEAN, turns=(*CLEAN.turns[:5], *lost[:2], *CLEAN.turns[5:]))
    assert flags(once) == []
    understood_between = (*lost[:2], customer(30, 10000, "好的", "affirm"), *lost[2:])
    assert flags(replace(CLEAN, turns=(*CLEAN.turns[:5], *understood_between,
                                       *CLEAN.turns[5:]))) == []


def test_a_call_outside_the_calling_window() -> None:
    evening = replace(CLEAN, started_at=AT_10 + timedelta(hours=11))  # 21:00 Shanghai
    [flag] = flags(evening)
    assert (flag.kind, flag.at_ms, flag.detail) == ("outside_window", 0,
                                                    "answered Tue 21:00 Asia/Shanghai")
    assert flags(replace(evening, definition=None)) == []  # no schedule known: not checked


def test_a_complaint_or_do_not_call_not_acted_on() -> None:
    ignored = replace(CLEAN, turns=(*CLEAN.turns[:5], customer(40, 9000, "别再打了，烦死了"),
                                    *CLEAN.turns[5:]))
    [flag] = flags(ignored)
    assert (flag.kind, flag.at_ms) == ("control_word_ignored", 9000)
    assert flag.detail.startswith("do_not_call")
    confirmed = replace(ignored, turns=(*ignored.turns[:6], bot(41, 9500, "utter_confirm_dnc"),
                                        *ignored.turns[6:]))
    assert "control_word_ignored" not in [f.kind for f in flags(confirmed)]
    recorded = replace(ignored, acted_on=frozenset({"do_not_call"}))
    assert flags(recorded) == []
    complaint = replace(CLEAN, outcome="declined", consents=(), turns=(
        *CLEAN.turns[:5], customer(40, 9000, "我要投诉你们"), *CLEAN.turns[5:10]))
    assert kinds(complaint) == [("control_word_ignored", 9000)]
    assert flags(replace(complaint, outcome="complaint")) == []


def test_long_silences_between_turns() -> None:
    gap = replace(CLEAN, turns=(*CLEAN.turns[:3], *(replace(t, start_ms=t.start_ms + 9000,
                                                            end_ms=(t.end_ms or 0) + 9000)
                                                    for t in CLEAN.turns[3:])))
    [flag] = flags(replace(gap, consents=(ConsentMark(35500, "speech", 0.9,
                                                      tuple(REQUIRED)),)))
    assert (flag.kind, flag.at_ms, flag.detail) == ("long_silence", 5500, "9.5 s")
    assert flag.as_json()["label_zh"] == "长时间静默"
    notes = replace(CLEAN, turns=(*CLEAN.turns, Turn(90, "system", "客户无应答", 40000)))
    assert flags(notes) == []  # a system note is not speech, and ends nothing


def test_a_sale_the_ledger_does_not_prove() -> None:
    # The agent sold, did not hand the call back, the customer hung up: no ledger consent.
    unproven = replace(CLEAN, outcome="escalated", consents=(), dispositions=("sale",),
                       turns=CLEAN.turns[:6])
    assert kinds(unproven) == [("sale_without_consent", 12000)]
    assert flags(replace(CLEAN, dispositions=("sale",))) == []  # handed back, confirmed
    assert flags(replace(unproven, dispositions=("resolved",))) == []


def test_the_voice_channel_still_writes_the_notes_the_flags_read() -> None:
    speaker = (REPO / "voice/call/speaker.py").read_text(encoding="utf-8")
    assert f'"{TALKED_OVER_NOTE}"' in speaker and f'"{CUT_OFF_SUFFIX}"' in speaker


def test_the_view_of_a_stored_call(db: Database) -> None:
    cid = add_campaign(db)
    call_id = add_call(db, cid, 1, outcome="consented")
    with db.session() as session:
        call = CallRepo(session).get_call(call_id)
        assert call is not None
        t0 = call.started_at
        calls = CallRepo(session)
        said = [("bot", "请问您是张先生本人吗？", 0), ("customer", "是的", 3),
                ("bot", "彩铃的资费是每月5元。（被打断）", 20), ("customer", "好的我同意", 40)]
        for speaker, text, s in said:
            calls.add_turn(call_id, speaker, text, started_at=t0 + timedelta(seconds=s),
                           ended_at=t0 + timedelta(seconds=s + 1),
                           input_mode="speech" if speaker == "customer" else None,
                           asr_confidence=0.6 if speaker == "customer" else None)
        ConsentLedger(session).append(
            call_id=call_id, contact_id=call.contact_id, campaign_id=cid, product="彩铃",
            script_hash="a" * 64, disclosures=["price"], utterance="好的我同意",
            input_mode="speech", asr_confidence=0.6, created_at=t0 + timedelta(seconds=41),
            turn_seq=4, turn_text="好的我同意", audio_start_ms=None, audio_end_ms=None)
    with db.session() as session:
        view = call_view(session, call_id)
    assert [t.response for t in view.turns] == ["utter_ask_identity", None,
                                                "utter_disclose_price", None]
    assert view.consents == (ConsentMark(40000, "speech", 0.6, ("price",)),)
    assert view.definition is None  # the test campaign's stored definition is partial
    found = flags(view)
    assert Flag("disclosure_cut_short", 20000, "cut off: price") in found
    assert ("consent_unclear", 40000) in [(f.kind, f.at_ms) for f in found]
