"""Persona playback: what the simphone says on a call, and when.

After the answer, `PersonaPlayer.conversation` plays the persona's turns (format in
`bot.personas`) against what the `BotListener` hears: `say` and `dtmf` wait for the bot to
stop, `barge_in` starts `barge_in_delay_s` after the bot does, `silent_s` waits, `hangup` sends
the BYE; out of turns (or when the bot stays quiet for `idle_hangup_s`) the simphone hangs up.
Operator announcements are played here too: as early media before a 404/480/486
(`announce`), or as call audio after a 200 OK, ended by a BYE (`announce_answered`).
Every utterance and digit sent is logged in the record as `OwnAudio`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from bot.personas import Persona
from voice.simphone.call import Call, OwnAudio, SimPhoneOptions
from voice.simphone.transactions import SipUas

ANNOUNCEMENTS: dict[str, tuple[str, int]] = {
    "invalid_number": ("您拨打的号码是空号，请查证后再拨。", 404),
    "suspended": ("您拨打的电话已停机。", 480),
    "powered_off": ("您拨打的电话已关机。", 480),
    "busy": ("您拨打的电话正在通话中，请稍后再拨。", 486),
}


def phrases(personas: Iterable[Persona]) -> list[str]:
    """Every text the personas can say (announcements included), each once, in order."""
    texts: list[str] = []
    for persona in personas:
        kind = persona.announcement
        if kind in ANNOUNCEMENTS:
            texts.append(ANNOUNCEMENTS[kind][0])
        texts += [str(t.value) for t in persona.turns if t.kind in ("say", "barge_in")]
    return list(dict.fromkeys(texts))


class PersonaPlayer:
    """Plays personas over calls' RTP sessions. `audio` maps each phrase to its PCM (8 kHz
    16-bit mono), filled by `SimPhone.prepare`; `sip` sends the early-media 183 and finals
    of announcements and the BYE."""

    def __init__(self, sip: SipUas, audio: Mapping[str, bytes], options: SimPhoneOptions,
                 clock: Callable[[], float]) -> None:
        self.sip = sip
        self.audio = audio
        self.options = options
        self.clock = clock

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

    async def say(self, call: Call, kind: str, text: str) -> OwnAudio:
        assert call.rtp is not None
        playback = call.rtp.play(self.audio[text], kind)
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

        for turn in call.persona.turns:
            if turn.kind in ("say", "dtmf", "silent_s") and not await bot_stopped():
                await self.sip.hang_up(call, "idle")
                return
            if turn.kind == "say":
                own = await self.say(call, "say", str(turn.value))
                mark = own.end_ms / 1000 + call.t0
            elif turn.kind == "barge_in":
                if not await bot_started():
                    await self.sip.hang_up(call, "idle")
                    return
                began = listener.started_after(mark) or self.clock()
                await asyncio.sleep(max(0.0, began + opts.barge_in_delay_s - self.clock()))
                own = await self.say(call, "barge_in", str(turn.value))
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
        # Out of turns: the bot should say goodbye and hang up; if it goes quiet, we do.
        while listener.quiet_for(self.clock(), mark) < opts.idle_hangup_s:
            await asyncio.sleep(0.1)
        await self.sip.hang_up(call, "idle")


__all__ = ["ANNOUNCEMENTS", "PersonaPlayer", "phrases"]
