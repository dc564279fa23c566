"""Persona playback: what the simphone says on a call, and when.

After the answer, `PersonaPlayer.conversation` plays the persona's turns (format in
`bot.personas`) against what the `BotListener` hears: `say` and `dtmf` wait for the bot to
stop, `barge_in` starts `barge_in_delay_s` after the bot does, `silent_s` waits, `hangup` sends
the BYE; out of turns (or when the bot stays quiet for `idle_hangup_s`) the simphone hangs up.
Operator announcements are played here too: as early media before a 404/480/486
(`announce`), or as call audio after a 200 OK, ended by a BYE (`announce_answered`).
Every utterance and digit sent is logged in the record as `OwnAudio`.

A turn with a pause in it (`say: [不是…, pause_s: 0.5, 我是他家人]`, see `bot.personas`) is
played as one utterance made by `compose`: each piece of words synthesised on its own, the
TTS's silence trimmed at the pause, and exactly the pause in digital silence between them,
so the far end hears the pause the persona asks for (whole 20 ms frames) and nothing else
moves: the turn waits for the bot and is logged like any other.  `compose` also says where
each piece's speech lies in the utterance, which bench/turns.py uses to time the caller's
end of speech and to see whether the bot spoke before the caller was done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.personas import MAX_ANSWERS, Persona
from voice.audio.frames import FRAME_BYTES, FRAME_MS, dbfs, split_frames
from voice.simphone.call import Call, OwnAudio, SimPhoneOptions
from voice.simphone.transactions import SipUas

ANNOUNCEMENTS: dict[str, tuple[str, int]] = {
    "invalid_number": ("您拨打的号码是空号，请查证后再拨。", 404),
    "suspended": ("您拨打的电话已停机。", 480),
    "powered_off": ("您拨打的电话已关机。", 480),
    "busy": ("您拨打的电话正在通话中，请稍后再拨。", 486),
}


# A frame at or above this level is speech; below it, the silence a pause is made of.  Lower
# than the gateway's VAD threshold (-40 dBFS, -46 with its hysteresis), so trimming at a
# pause never cuts a syllable's tail that the gateway would still hear as speech.
SPEECH_FLOOR_DBFS = -50.0


def phrases(personas: Iterable[Persona]) -> list[str]:
    """Every text the personas can say (announcements included; each piece of words of a
    turn with pauses), each once, in order."""
    texts: list[str] = []
    for persona in personas:
        kind = persona.announcement
        if kind in ANNOUNCEMENTS:
            texts.append(ANNOUNCEMENTS[kind][0])
        texts += [str(p) for t in persona.turns if t.kind in ("say", "barge_in")
                  for p in t.spoken if isinstance(p, str)]
        texts += [reply for _, reply in persona.answers]
    return list(dict.fromkeys(texts))


@dataclass(frozen=True)
class Utterance:
    """What one turn plays: `pcm`, and for each piece of words the ms of its first and the
    end of its last speech frame within `pcm`."""

    pcm: bytes
    words_ms: tuple[tuple[int, int], ...]

    @property
    def speech_end_ms(self) -> int:
        return self.words_ms[-1][1]


def speech_frames(frames: Sequence[bytes]) -> tuple[int, int]:
    """First speech frame and one past the last (the whole piece if none is speech)."""
    voiced = [i for i, frame in enumerate(frames) if dbfs(frame) >= SPEECH_FLOOR_DBFS]
    return (voiced[0], voiced[-1] + 1) if voiced else (0, len(frames))


def compose(spoken: Sequence[str | float], audio: Mapping[str, bytes]) -> Utterance:
    """The utterance of `Turn.spoken`: words (keys of `audio`) and pauses (seconds).  A
    plain utterance is its audio unchanged; at a pause the pieces are trimmed to their
    speech and the pause's frames of silence put between."""
    if len(spoken) == 1:
        pcm = audio[str(spoken[0])]
        first, end = speech_frames(split_frames(pcm))
        return Utterance(pcm, ((first * FRAME_MS, end * FRAME_MS),))
    out: list[bytes] = []
    words: list[tuple[int, int]] = []
    for n, part in enumerate(spoken):
        if not isinstance(part, str):
            out += [bytes(FRAME_BYTES)] * max(1, round(part * 1000 / FRAME_MS))
            continue
        frames = split_frames(audio[part])
        first, end = speech_frames(frames)
        keep_from = first if n > 0 else 0  # a pause before: start at the speech
        keep_to = end if n < len(spoken) - 1 else len(frames)  # a pause after: end there
        at = len(out) - keep_from
        words.append(((at + first) * FRAME_MS, (at + end) * FRAME_MS))
        out += frames[keep_from:keep_to]
    return Utterance(b"".join(out), tuple(words))


class PersonaPlayer:
    """Plays personas over calls' RTP sessions. `audio` maps each phrase to its PCM (8 kHz
    16-bit mono), filled by `SimPhone.prepare`; `sip` sends the early-media 183 and finals
    of announcements and the BYE."""

    def __init__(self, sip: SipUas, audio: Mapping[str, bytes], options: SimPhoneOptions,
                 clock: Callable[[], float],
                 bot_words: Callable[[str], Sequence[str]] | None = None) -> None:
        self.sip = sip
        self.audio = audio
        self.options = options
        self.clock = clock
        # What the bot has said on a call so far, by the gateway's call id (the INVITE's
        # X-Waihu-Call-Id): the persona's `answers` need the words, which the audio alone
        # does not give without a recogniser of our own.  None: answers are never given.
        self.bot_words = bot_words

    async def announce(self, call: Call, kind: str) -> None:
        """The announcement as early media (183 + SDP), then its final status."""
        text, status = ANNOUNCEMENTS[kind]
        assert call.rtp is not None
        self.sip.respond(call, 183, body=call.answer_sdp)
        call.rtp.start(call.rtp.remote or ("127.0.0.1", 9))
        for n in range(self.options.announce_repeat):
            if n:
                await asyncio.sleep(self.options.announce_gap_s)
            await self.say(call, "announcement", text)
        self.sip.final(call, status)
        call.record.hangup_reason = f"announcement_{status}"

    async def announce_answered(self, call: Call, kind: str) -> None:
        """An exchange that answers and then plays the announcement: the same words as
        `announce`, as call audio after the 200 OK, then a BYE (unless the bot hangs up
        first, which ends this task)."""
        text = ANNOUNCEMENTS[kind][0]
        for n in range(self.options.announce_repeat):
            if n:
                await asyncio.sleep(self.options.announce_gap_s)
            await self.say(call, "announcement", text)
        await self.sip.hang_up(call, "announcement")

    async def say(self, call: Call, kind: str, text: str,
                  spoken: Sequence[str | float] = ()) -> OwnAudio:
        """Play `text` (or the words and pauses of `spoken`, see `compose`) and log it."""
        assert call.rtp is not None
        pcm = compose(spoken, self.audio).pcm if len(spoken) > 1 else self.audio[text]
        playback = call.rtp.play(pcm, kind)
        await playback.done
        start = playback.started or self.clock()
        own = OwnAudio(kind, text, call.ms(start), call.ms(playback.ended or self.clock()))
        call.record.own_audio.append(own)
        if call.listener is not None:
            call.listener.expect_reply(own)
        return own

    async def conversation(self, call: Call) -> None:
        """Play the persona's turns against what the bot is heard to say."""
        listener, rtp, opts = call.listener, call.rtp, self.options
        assert listener is not None and rtp is not None
        mark = self.clock()  # the bot must speak (and stop) after this

        def stopped() -> bool:
            return listener.stopped_after(mark)

        async def bot_stopped() -> bool:
            return await listener.wait(stopped, idle_s=opts.idle_hangup_s, since=mark,
                                       clock=self.clock)

        def started() -> bool:
            return listener.started_after(mark) is not None

        async def bot_started() -> bool:
            return await listener.wait(started, idle_s=opts.idle_hangup_s, since=mark,
                                       clock=self.clock)

        asked = BotQuestions(call, self.bot_words)

        async def answered() -> bool:
            """Said the persona's reply if the bot just asked one of its `answers`."""
            nonlocal mark
            reply = asked.reply()
            if reply is None:
                return False
            own = await self.say(call, "say", reply)
            asked.spoke()
            mark = own.end_ms / 1000 + call.t0
            return True

        for turn in call.persona.turns:
            if turn.kind in ("say", "dtmf", "silent_s"):
                while await bot_stopped():
                    if not await answered():
                        break
                else:
                    await self.sip.hang_up(call, "idle")
                    return
            if turn.kind == "say":
                own = await self.say(call, "say", str(turn.value), turn.spoken)
                asked.spoke()
                mark = own.end_ms / 1000 + call.t0
            elif turn.kind == "barge_in":
                if not await bot_started():
                    await self.sip.hang_up(call, "idle")
                    return
                began = listener.started_after(mark) or self.clock()
                await asyncio.sleep(max(0.0, began + opts.barge_in_delay_s - self.clock()))
                own = await self.say(call, "barge_in", str(turn.value), turn.spoken)
                asked.spoke()
                mark = own.end_ms / 1000 + call.t0
            elif turn.kind == "dtmf":
                first, last = await rtp.send_dtmf(str(turn.value), opts.dtmf_duration_ms,
                                                  opts.dtmf_gap_ms)
                own = OwnAudio("dtmf", str(turn.value), call.ms(first), call.ms(last))
                call.record.own_audio.append(own)
                listener.expect_reply(own)
                mark = last
            elif turn.kind == "silent_s":
                mark = self.clock()
                await asyncio.sleep(float(turn.value))
            elif turn.kind == "hangup":
                call.record.turns_done += 1
                await self.sip.hang_up(call, "persona")
                return
            call.record.turns_done += 1
        # Out of turns: the bot should say goodbye and hang up; if it goes quiet, we do
        # (after answering what it asked back, if the persona has an answer).
        while listener.quiet_for(self.clock(), mark) < opts.idle_hangup_s:
            if not (stopped() and await answered()):
                await asyncio.sleep(0.1)
        await self.sip.hang_up(call, "idle")


class BotQuestions:
    """What the bot said on *call* since the persona last spoke, and whether it asked
    something the persona has an answer for (`Persona.answer_to`, at most `MAX_ANSWERS`)."""

    def __init__(self, call: Call, bot_words: Callable[[str], Sequence[str]] | None) -> None:
        self.persona = call.persona
        self.call_id = call.invite.get("x-waihu-call-id") or ""
        self.bot_words = bot_words
        self.seen = 0  # bot turns heard before the persona last spoke
        self.given = 0

    def _words(self) -> Sequence[str]:
        if self.bot_words is None or not self.call_id or not self.persona.answers:
            return ()
        return self.bot_words(self.call_id)

    def reply(self) -> str | None:
        if self.given >= MAX_ANSWERS:
            return None
        reply = self.persona.answer_to("".join(self._words()[self.seen:]))
        if reply is not None:
            self.given += 1
        return reply

    def spoke(self) -> None:
        self.seen = len(self._words())


__all__ = ["ANNOUNCEMENTS", "SPEECH_FLOOR_DBFS", "PersonaPlayer", "Utterance", "compose",
           "phrases"]
