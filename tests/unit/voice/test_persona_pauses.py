"""Personas who pause mid-sentence: the `say: [words, pause_s: N, words]` form (parsing in
bot/personas.py) and how the simphone plays it (voice/simphone/playback.py): the pieces'
own silence trimmed at the pause, exactly the pause between them, in 20 ms RTP slots."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.personas import Persona, PersonaError, Turn, load_persona, parse_persona
from voice.audio.frames import FRAME_BYTES, FRAME_MS, dbfs
from voice.audio.g711 import alaw_decode
from voice.simphone.call import OwnAudio, SimPhoneOptions
from voice.simphone.playback import PersonaPlayer, compose, phrases
from voice.simphone.rtp import PT_PCMA, RtpPacket, RtpSession


def tone(ms: int) -> bytes:
    n = 8 * ms
    return array("h", (round(8000 * math.sin(2 * math.pi * 440 * i / 8000))
                       for i in range(n))).tobytes()


def quiet(ms: int) -> bytes:
    return bytes(16 * ms)


# Synthesised pieces come with silence of their own at both ends.
AUDIO = {"不是": quiet(100) + tone(300) + quiet(200),
         "我是他家人": quiet(80) + tone(600) + quiet(100)}


def turns(*raw: Any) -> tuple[Turn, ...]:
    return parse_persona({"id": "p", "turns": list(raw)}).turns


def test_a_spoken_list_keeps_words_and_pauses() -> None:
    [turn] = turns({"say": ["不是…", {"pause_s": 0.5}, "我是他家人"]})
    assert turn == Turn("say", "不是…我是他家人", ("不是…", 0.5, "我是他家人"))
    assert turn.spoken == ("不是…", 0.5, "我是他家人")


def test_text_clients_get_the_words_with_a_comma_for_the_pause() -> None:
    [plain, paused, barge] = turns({"say": "是的"}, {"say": ["嗯", {"pause_s": 0.4}, "是我"]},
                                   {"barge_in": ["等一下", {"pause_s": 1}, "我问一下"]})
    assert plain.spoken == ("是的",) and plain.parts == ()
    assert paused.value == "嗯，是我"
    assert barge.value == "等一下，我问一下" and barge.parts[1] == 1.0


def test_the_flow_list_form_reads_from_a_persona_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("id: p\nturns:\n- say: [不是…, pause_s: 0.5, 我是他家人]\n"
                    "- say:\n  - 我想想\n  - pause_s: 0.3\n  - 还是算了\n", encoding="utf-8")
    first, second = load_persona(path).turns
    assert first.parts == ("不是…", 0.5, "我是他家人")
    assert second.parts == ("我想想", 0.3, "还是算了")


@pytest.mark.parametrize(("spoken", "message"), [
    ([{"pause_s": 0.5}, "是我"], "a pause must follow words"),
    (["嗯", {"pause_s": 0.5}], "must end with words"),
    (["嗯", {"pause_s": 0.5}, {"pause_s": 0.5}, "是我"], "a pause must follow words"),
    (["嗯", "是我"], "two pieces of words in a row"),
    (["嗯", {"pause_s": 0}, "是我"], "pause_s must be > 0"),
    (["嗯", {"pause_s": 6}, "是我"], "pause_s must be > 0 and <= 5"),
    (["嗯", {"pause_s": "long"}, "是我"], "pause_s must be a number"),
    (["嗯", {"silent_s": 1}, "是我"], "holds words and `pause_s: N`"),
    ([], "must end with words"),
])
def test_bad_spoken_lists_are_refused_with_the_turn(spoken: list[Any], message: str) -> None:
    with pytest.raises(PersonaError, match=message) as err:
        turns({"say": "是的"}, {"say": spoken})
    assert "turn 2" in str(err.value)


def test_the_simphone_synthesises_each_piece_of_words() -> None:
    persona = Persona("p", turns=turns({"say": ["不是", {"pause_s": 0.5}, "我是他家人"]},
                                       {"say": "不是"}))
    assert phrases([persona]) == ["不是", "我是他家人"]


def voiced(pcm: bytes) -> list[bool]:
    return [dbfs(pcm[i:i + FRAME_BYTES]) >= -50 for i in range(0, len(pcm), FRAME_BYTES)]


def test_compose_trims_the_pieces_at_the_pause_and_puts_exactly_the_pause_between() -> None:
    utterance = compose(("不是", 0.5, "我是他家人"), AUDIO)
    # 不是 keeps its leading 100 ms, loses its 200 ms tail; 我是他家人 loses its 80 ms lead.
    assert utterance.words_ms == ((100, 400), (900, 1500))
    assert utterance.speech_end_ms == 1500
    frames = voiced(utterance.pcm)
    assert frames == [False] * 5 + [True] * 15 + [False] * 25 + [True] * 30 + [False] * 5


def test_compose_leaves_a_plain_utterance_as_synthesised() -> None:
    utterance = compose(("不是",), AUDIO)
    assert utterance.pcm == AUDIO["不是"]
    assert utterance.words_ms == ((100, 400),)


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(RtpPacket.parse(data))


async def test_the_player_sends_the_pause_as_silent_slots_between_the_words() -> None:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    rtp = RtpSession(PT_PCMA, 101)
    await rtp.open()
    t0 = time.monotonic()
    call = SimpleNamespace(rtp=rtp, record=SimpleNamespace(own_audio=[]), listener=None,
                           ms=lambda t: round((t - t0) * 1000, 1))
    player = PersonaPlayer(cast(Any, None), AUDIO, SimPhoneOptions(), time.monotonic)
    [turn] = turns({"say": ["不是", {"pause_s": 0.5}, "我是他家人"]})
    try:
        rtp.start(transport.get_extra_info("sockname"))
        own = await asyncio.wait_for(
            player.say(cast(Any, call), "say", str(turn.value), turn.spoken), 5)
        await asyncio.sleep(0.1)
    finally:
        await rtp.close()
        transport.close()
    assert call.record.own_audio == [own]
    assert isinstance(own, OwnAudio) and own.text == "不是，我是他家人"
    # Played from its first slot to its last: 75 frames of 20 ms, whatever the loop's lag.
    assert own.end_ms - own.start_ms >= 75 * FRAME_MS - 1
    heard = [dbfs(alaw_decode(p.payload)) >= -50 for p in sink.packets]
    first = heard.index(True)
    assert heard[first:first + 15] == [True] * 15
    assert heard[first + 15:first + 40] == [False] * 25  # the pause, in RTP slots
    assert heard[first + 40:first + 70] == [True] * 30
