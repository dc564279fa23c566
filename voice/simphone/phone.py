"""The simphone: a SIP UAS on UDP that answers every call as the dialled number's persona.

One UDP socket carries SIP for all calls; each call gets an `RtpSession` of its own. The dial
phase follows the persona's `dial` (format in `bot.personas`): ring and answer,
486, ring forever, 603, an operator announcement as early media before 404/480/486
(`announce:KIND`), or one played after a 200 OK and ended with a BYE
(`announce_answered:KIND`); after an answer its `turns` are played against what the bot is
heard to say (VAD on the received audio). Every call leaves a `CallRecord` with the timings
the voice benchmark reads; unknown numbers get 404, offers without G.711 488.

This module owns the life cycle (prompts, socket, shutdown), the dial phase and the media
set-up of each call, and the report. The rest is beside it: SIP transactions and dialogs in
`transactions`, the persona's turns and announcements in `playback`, hearing the bot and
recording in `listening`, the shared per-call state and records in `call`; parsing in `sip`
and `rtp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.personas import Persona
from voice.simphone.call import Call, CallRecord, OwnAudio, SimPhoneOptions, Span
from voice.simphone.listening import BotListener, Listening
from voice.simphone.playback import ANNOUNCEMENTS, PersonaPlayer, phrases
from voice.simphone.rtp import ReceivedFrame, RtpSession
from voice.simphone.sdp import Sdp, build_answer, negotiate
from voice.simphone.sip import (
    REASONS,
    SipRequest,
    SipUri,
    addr_uri,
    new_tag,
)
from voice.simphone.transactions import InviteTx, SipUas
from voice.tts.cache import PromptCache
from voice.tts.espeak import Synthesizer
from voice.tts.kokoro import customer_voice

log = logging.getLogger("waihu.simphone")


def _mask(number: str) -> str:
    return f"***{number[-4:]}" if len(number) > 4 else number


class SimPhone:
    """Virtual customers behind one SIP address; see the module docstring.

    `personas` maps the dialled number (the Request-URI user) to the persona that answers it.
    Every persona phrase is synthesised in `prepare()` (called by `start()` if needed: it
    blocks, so call it before the event loop runs when pyttsx3 is the engine).
    """

    def __init__(self, personas: Mapping[str, Persona], host: str = "127.0.0.1", port: int = 0,
                 synthesizer: Synthesizer | None = None,
                 cache_dir: str | Path = "var/cache/tts", *,
                 record_dir: str | Path | None = None, report: str | Path | None = None,
                 options: SimPhoneOptions | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 bot_words: Callable[[str], Sequence[str]] | None = None) -> None:
        self.personas = dict(personas)
        self.host = host
        self.synthesizer = synthesizer
        self.cache_dir = Path(cache_dir)
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.report = Path(report) if report is not None else None
        self.options = options or SimPhoneOptions()
        self.clock = clock
        self.records: list[CallRecord] = []
        self.completed: asyncio.Queue[CallRecord] = asyncio.Queue()
        self.audio: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sip = SipUas(host, port, t1=self.options.t1, clock=clock, spawn=self._spawn,
                          on_invite=self._new_call)
        self.player = PersonaPlayer(self.sip, self.audio, self.options, clock, bot_words)
        self.listening = Listening(self.options, clock, self.record_dir)

    # --- life cycle -----------------------------------------------------------------------

    def phrases(self) -> list[str]:
        return phrases(self.personas.values())

    def prepare(self) -> None:
        """Synthesise (or load from the prompt cache) every phrase the personas can say."""
        missing = [t for t in self.phrases() if t not in self.audio]
        if not missing:
            return
        cache = PromptCache(self.cache_dir, self.synthesizer or customer_voice())
        report = cache.warm(missing)
        if report["failed"]:
            raise RuntimeError(f"simphone: TTS failed for {report['errors']}")
        for text in missing:
            self.audio[text] = cache.get(text)

    async def start(self) -> None:
        self.prepare()
        await self.sip.open()
        log.info("simphone.listening address=%s:%d personas=%d", self.host, self.port,
                 len(self.personas))

    @property
    def port(self) -> int:
        return self.sip.port

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.host}:{self.port}"

    async def close(self) -> None:
        """Hang up every call (BYE, not awaited for long), then close the socket."""
        for call in list(self.sip.calls.values()):
            if call.task is not None and not call.task.done():
                call.task.cancel()
        calls = [c.task for c in self.sip.calls.values() if c.task is not None]
        if calls:
            await asyncio.wait(calls, timeout=3)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        self.sip.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- a new call -----------------------------------------------------------------------

    def _new_call(self, request: SipRequest, tx: InviteTx, t0: float) -> Call:
        """`SipUas.on_invite`: the call of a new INVITE (the 100 is sent), its task started."""
        try:
            number = SipUri.parse(request.uri).user
        except ValueError:
            number = ""
        persona = self.personas.get(number)
        record = CallRecord(
            number=number, persona=persona.id if persona else "",
            dial=persona.dial if persona else "unknown",
            dial_result=persona.dial_result if persona else "invalid_number",
            call_id=request.call_id,
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))
        try:
            target = addr_uri(request.get("contact")) or addr_uri(request.get("from"))
        except ValueError:
            target = ""
        call = Call(persona or Persona(id="", dial="busy"), number, request, tx, new_tag(), t0,
                    record, target, [addr_uri(r) for r in request.get_all("record-route")])
        log.info("simphone.invite call_id=%s number=%s persona=%s", request.call_id,
                 _mask(number), record.persona or "-")
        call.task = self._spawn(self._run_call(call) if persona else self._not_found(call))
        return call

    async def _not_found(self, call: Call) -> None:
        try:
            await asyncio.sleep(self.options.final_delay_s)
        finally:
            self.sip.final(call, 404)
            self._finish(call)

    # --- one call --------------------------------------------------------------------------

    async def _run_call(self, call: Call) -> None:
        persona, sip = call.persona, self.sip
        try:
            async with asyncio.timeout(self.options.max_call_s):
                if persona.dial == "busy":
                    await asyncio.sleep(self.options.final_delay_s)
                    sip.final(call, 486)
                    return
                if not await self._open_media(call):
                    return
                if persona.dial.startswith("announce:"):
                    await self.player.announce(call, persona.dial.partition(":")[2])
                    return
                sip.respond(call, 180)
                if persona.dial == "no_answer":
                    await asyncio.Event().wait()  # rings until CANCEL or the hard cap
                await asyncio.sleep(persona.ring_s)
                if persona.dial == "reject":
                    sip.final(call, 603)
                    return
                await self._answer(call)
                if persona.dial.startswith("announce_answered:"):
                    await self.player.announce_answered(call, persona.dial.partition(":")[2])
                    return
                await self.player.conversation(call)
        except TimeoutError:
            if call.confirmed:
                await sip.hang_up(call, "max_call")
            else:
                sip.final(call, 480)
                call.record.hangup_reason = "max_call"
        except asyncio.CancelledError:
            if call.record.hangup_by is None and call.confirmed:  # close() or no ACK
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        sip.hang_up(call, call.record.hangup_reason or "shutdown"), 1.0)
            elif call.tx.final is None:
                sip.final(call, 480)
        finally:
            await self._finish_media(call)
            self._finish(call)

    async def _open_media(self, call: Call) -> bool:
        try:
            if not call.invite.body:
                raise ValueError("no SDP offer (late offer is not supported)")
            offer = Sdp.parse(call.invite.body)
            chosen = negotiate(offer)
        except ValueError as exc:
            log.info("simphone.sdp_refused call_id=%s error=%s", call.invite.call_id, exc)
            await asyncio.sleep(self.options.final_delay_s)
            self.sip.final(call, 488)
            return False
        rtp = RtpSession(chosen.payload_type, chosen.dtmf_payload_type, clock=self.clock,
                         on_frame=lambda f: self._heard(call, f),
                         on_digit=call.record.dtmf_received.append,
                         on_sent=lambda pcm, t, slot: self.listening.sent(call, pcm, t, slot))
        await rtp.open(self.host)
        call.rtp = rtp
        call.record.codec = chosen.codec
        call.answer_sdp = build_answer(offer, chosen, self.host, rtp.local_address[1],
                                       session_id=secrets.randbelow(2**31))
        self.listening.open(call)
        rtp.remote = chosen.remote
        return True

    def _heard(self, call: Call, frame: ReceivedFrame) -> None:
        """Every 20 ms received on a call (bench/voice.py overrides it to time arrivals)."""
        self.listening.heard(call, frame)

    async def _answer(self, call: Call) -> None:
        assert call.rtp is not None
        now = self.clock()
        self.listening.answered(call, now)
        self.sip.respond(call, 200, body=call.answer_sdp)
        call.confirmed = True
        call.record.answered_ms = call.ms(now)
        call.rtp.start(call.rtp.remote or ("127.0.0.1", 9))
        log.info("simphone.answered call_id=%s codec=%s", call.invite.call_id, call.record.codec)

    async def _finish_media(self, call: Call) -> None:
        if call.rtp is not None:
            await call.rtp.close()
        self.listening.finish(call)

    def _finish(self, call: Call) -> None:
        record = call.record
        if record.ended_ms is None:
            record.ended_ms = call.ms(self.clock())
        self.records.append(record)
        self.completed.put_nowait(record)
        if self.report is not None:
            self.report.parent.mkdir(parents=True, exist_ok=True)
            with self.report.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        log.info("simphone.call_done call_id=%s persona=%s status=%s hangup_by=%s",
                 record.call_id, record.persona or "-", record.final_status, record.hangup_by)
        # Keep the INVITE transaction a while to absorb retransmissions, then forget the call.
        loop = asyncio.get_running_loop()
        loop.call_later(64 * self.options.t1, self.sip.forget, call)


def personas_by_number(numbers: Mapping[str, str], personas: Iterable[Persona]) -> dict[str,
                                                                                         Persona]:
    """`{number: persona id}` + the personas → `{number: Persona}`; unknown ids raise."""
    by_id = {p.id: p for p in personas}
    missing = sorted({pid for pid in numbers.values() if pid not in by_id})
    if missing:
        raise ValueError(f"numbers refer to unknown personas: {', '.join(missing)}")
    return {str(number): by_id[pid] for number, pid in numbers.items()}


__all__ = ["ANNOUNCEMENTS", "REASONS", "BotListener", "CallRecord", "OwnAudio", "SimPhone",
           "SimPhoneOptions", "Span", "personas_by_number"]
