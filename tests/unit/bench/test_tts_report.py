"""bench/tts.py's report, scored from transcripts (``--rescore``, no synthesis or ASR): the
JSON has ``voices.<name>.cer_overall``, each prompt's CER and its errors by cause, and the
prompts with a wrong number listed apart with what was said and heard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import tts

ROWS = [
    {"response": "utter_disclose_price", "text": "来电提醒服务的资费是每月5元。",
     "heard": "來電提醒服務的資費是每月五元"},  # right: script and numerals differ only
    {"response": "utter_notice_more_info", "text": "具体情况您可以拨打10010咨询。",
     "heard": "具體情況您可以撥打1010咨詢"},  # a zero missing: a wrong number
    {"response": "utter_greeting", "text": "您好，这里是示例通信客服中心。",
     "heard": "您好,这里是势力通信客服中心"},  # the same sound written otherwise
]


def test_rescored_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"voices": {"zf_xiaoyi": {
        "all": [dict(row) for row in ROWS], "synthesis": {"mean_s": 1.0}}}},
        ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out.json"
    assert tts.main(["--rescore", str(earlier), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text(encoding="utf-8"))
    voice = printed["voices"]["zf_xiaoyi"]
    # 0 + 1 + 2 edits over 14 + 16 + 13 characters (digits as digits).
    assert voice["cer_overall"] == pytest.approx(3 / 43, abs=1e-4)
    assert [row["cer"] for row in voice["all"]] == [0.0, round(1 / 16, 3), round(2 / 13, 3)]
    assert voice["errors_by_cause"] == {"missing": 1, "same_sound": 2}
    assert voice["prompts_with_wrong_number"] == 1
    assert voice["wrong_numbers_by_kind"] == {"phone": 1}
    [wrong] = voice["number_errors"]
    assert wrong["response"] == "utter_notice_more_info"
    assert wrong["numbers_wrong"] == [{"said": "10010", "heard": "1010", "kind": "phone"}]
    assert printed["summary"]["zf_xiaoyi"]["cer_overall"] == voice["cer_overall"]
    assert voice["exact"] == 1
