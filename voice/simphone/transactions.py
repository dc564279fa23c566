"""The simphone's SIP side: one UDP socket, the INVITE server transactions and the dialogs.

RFC 3261 UAS behaviour kept: 100 Trying at once; a retransmitted INVITE gets the last response
again and never a second call; 2xx is retransmitted (T1 doubling to T2) until the ACK, and
after 64·T1 without one the call is hung up; non-2xx finals are retransmitted until their ACK;
CANCEL gets 200 and the INVITE 487; BYE in both directions with the dialog's tags, our own
CSeq and the route set from Record-Route; out-of-dialog requests get 481 (OPTIONS 200),
in-dialog OPTIONS/INFO/UPDATE/NOTIFY 200 and other methods 501.

What to do with a new call is not decided here: `on_invite` (the phone) builds the `Call`.
Messages are parsed and written by `voice.simphone.sip`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from voice.simphone.call import T2, Call
from voice.simphone.sdp import Sdp, negotiate
from voice.simphone.sip import (
    SipMessage,
    SipRequest,
    SipResponse,
    SipUri,
    new_branch,
    new_tag,
    parse_message,
    response_to,
)

log = logging.getLogger("waihu.simphone")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
USER_AGENT = "waihu-simphone"

Address = tuple[str, int]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
OnInvite = Callable[[SipRequest, "InviteTx", float], Call]


@dataclass
class InviteTx:
    """An INVITE server transaction: the last response (re-sent to retransmissions), its
    final status, and the ACK that ends the retransmission of that final."""

    request: SipRequest
    addr: Address
    last: bytes = b""
    final: int | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    retransmit: asyncio.Task[None] | None = None


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, uas: SipUas) -> None:
        self.uas = uas

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.uas.datagram(data, addr)


class SipUas:
    """The SIP user agent of a simphone on `host:port` (0: any free port).

    `on_invite(request, tx, t0)` is called for each new INVITE, after the 100 Trying, and
    returns its `Call` (with `task` set); `spawn` runs the retransmission timers as tasks the
    owner cancels on close; `t1` is RFC 3261's T1 (shortened by tests).
    """

    def __init__(self, host: str, port: int, *, t1: float, clock: Callable[[], float],
                 spawn: Spawn, on_invite: OnInvite) -> None:
        self.host = host
        self._port = port
        self.t1 = t1
        self.clock = clock
        self.spawn = spawn
        self.on_invite = on_invite
        self.calls: dict[str, Call] = {}  # Call-ID → call
        self._transport: asyncio.DatagramTransport | None = None
        self._invites: dict[str, InviteTx] = {}  # branch (or Call-ID+CSeq) → transaction
        self._client_txs: dict[str, asyncio.Future[SipResponse]] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=(self.host, self._port))
        self._transport = cast(asyncio.DatagramTransport, transport)

    @property
    def port(self) -> int:
        if self._transport is None:
            raise RuntimeError("SimPhone is not started")
        return int(self._transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def contact(self, call: Call) -> str:
        return f"<sip:{call.number}@{self.host}:{self.port}>"

    # --- SIP in -----------------------------------------------------------------------------

    def send(self, message: SipMessage | bytes, addr: Address) -> None:
        if self._transport is not None:
            self._transport.sendto(message if isinstance(message, bytes) else bytes(message),
                                   addr)

    def datagram(self, data: bytes, addr: Address) -> None:
        if not data.strip():
            return  # keep-alive CRLF
        try:
            message = parse_message(data)
            if isinstance(message, SipResponse):
                self._on_response(message)
            else:
                self._on_request(message, addr)
        except ValueError as exc:
            log.warning("simphone.bad_message from=%s:%d error=%s", addr[0], addr[1], exc)

    def _tx_key(self, request: SipRequest) -> str:
        branch = request.branch
        if branch.startswith("z9hG4bK"):
            return branch
        return f"{request.call_id}/{request.cseq[0]}"  # RFC 2543 peers: no magic cookie

    def reply(self, request: SipRequest, addr: Address, status: int,
              reason: str | None = None, to_tag: str = "", **kwargs: Any) -> SipResponse:
        headers = list(kwargs.pop("headers", ()))
        headers.append(("User-Agent", USER_AGENT))
        response = response_to(request, status, reason, to_tag=to_tag, headers=headers,
                               **kwargs)
        self.send(response, addr)
        return response

    def _on_request(self, request: SipRequest, addr: Address) -> None:
        method = request.method.upper()
        call = self.calls.get(request.call_id)
        if method == "INVITE" and not request.to_tag:
            tx = self._invites.get(self._tx_key(request))
            if tx is not None:  # a retransmission: the last response again, no new call
                if tx.last:
                    self.send(tx.last, tx.addr)
                return
            self._new_invite(request, addr)
        elif method == "ACK":
            self._on_ack(request, call)
        elif method == "CANCEL":
            self._on_cancel(request, addr)
        elif call is None or (request.to_tag and request.to_tag != call.local_tag):
            if method == "OPTIONS":
                self.reply(request, addr, 200, headers=[("Allow", ALLOW)])
            else:
                self.reply(request, addr, 481, to_tag=new_tag())
        elif method == "BYE":
            self.reply(request, addr, 200, to_tag=call.local_tag)
            self.ended_by(call, "bot", "bye")
        elif method == "INVITE":  # re-INVITE: keep our answer, follow a moved RTP address
            self._reinvite(call, request, addr)
        elif method in ("OPTIONS", "INFO", "UPDATE", "NOTIFY"):
            self.reply(request, addr, 200, to_tag=call.local_tag, headers=[("Allow", ALLOW)])
        else:
            self.reply(request, addr, 501, to_tag=call.local_tag, headers=[("Allow", ALLOW)])

    def _on_ack(self, request: SipRequest, call: Call | None) -> None:
        tx = self._invites.get(self._tx_key(request))
        if tx is not None and tx.final is not None and tx.final >= 300:
            tx.acked.set()  # ACK of a non-2xx final: same transaction
            return
        if call is not None and request.cseq[0] == call.invite.cseq[0]:
            call.tx.acked.set()  # ACK of our 2xx: its own transaction
        elif call is not None:
            call.tx.acked.set()  # ACK of a re-INVITE 2xx

    def _on_cancel(self, request: SipRequest, addr: Address) -> None:
        tx = self._invites.get(self._tx_key(request))
        call = self.calls.get(request.call_id)
        if tx is None or call is None:
            self.reply(request, addr, 481, to_tag=new_tag())
            return
        self.reply(request, addr, 200, to_tag=call.local_tag)
        if tx.final is None:
            self.final(call, 487)
            self.ended_by(call, "caller", "cancel")

    def _on_response(self, response: SipResponse) -> None:
        future = self._client_txs.get(response.branch)
        if future is not None and response.status >= 200 and not future.done():
            future.set_result(response)

    # --- the INVITE server transaction -----------------------------------------------------

    def _new_invite(self, request: SipRequest, addr: Address) -> None:
        t0 = self.clock()
        tx = InviteTx(request, addr)
        self._invites[self._tx_key(request)] = tx
        tx.last = bytes(self.reply(request, addr, 100))
        self.calls[request.call_id] = self.on_invite(request, tx, t0)

    def respond(self, call: Call, status: int, *, body: bytes = b"",
                reason: str | None = None) -> None:
        """Answer the call's INVITE; a final starts its retransmission until the ACK."""
        headers = [("Contact", self.contact(call)), ("Allow", ALLOW)] if status > 100 else []
        response = self.reply(call.invite, call.tx.addr, status, reason,
                              to_tag=call.local_tag, headers=headers, body=body)
        call.tx.last = bytes(response)
        if status >= 200:
            call.tx.final = status
            call.record.final_status = status
            call.tx.retransmit = self.spawn(self._retransmit(call, status))

    def final(self, call: Call, status: int, reason: str | None = None) -> None:
        """A final response, unless one was sent already."""
        if call.tx.final is None:
            self.respond(call, status, reason=reason)

    async def _retransmit(self, call: Call, status: int) -> None:
        """Timer G / 2xx retransmission until the ACK; 64·T1 without one gives up."""
        t1 = self.t1
        interval, waited = t1, 0.0
        while waited < 64 * t1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.tx.acked.wait(), interval)
                return
            waited += interval
            self.send(call.tx.last, call.tx.addr)
            interval = min(2 * interval, T2)
        if status < 300:
            log.warning("simphone.no_ack call_id=%s", call.invite.call_id)
            if call.task is not None and not call.ended:
                call.record.hangup_reason = "ack_timeout"
                call.task.cancel()

    def _reinvite(self, call: Call, request: SipRequest, addr: Address) -> None:
        if request.body and call.rtp is not None:
            with contextlib.suppress(ValueError):
                call.rtp.remote = negotiate(Sdp.parse(request.body)).remote
        call.tx.acked.clear()
        self.reply(request, addr, 200, to_tag=call.local_tag, body=call.answer_sdp,
                   headers=[("Contact", self.contact(call))])

    # --- ending the dialog -----------------------------------------------------------------

    async def hang_up(self, call: Call, reason: str) -> None:
        """Send BYE in the dialog (route set from Record-Route) and wait for its 200."""
        if call.ended:
            return
        call.ended = True
        call.record.hangup_by = "simphone"
        call.record.hangup_reason = reason
        call.record.ended_ms = call.ms(self.clock())
        if call.rtp is not None:
            call.rtp.stop_playback()
        request, dest = self._bye(call)
        branch = request.branch
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._client_txs[branch] = future
        interval, waited = self.t1, 0.0
        try:
            while waited < 64 * self.t1 and not future.done():
                self.send(request, dest)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), interval)
                waited += interval
                interval = min(2 * interval, T2)
        finally:
            self._client_txs.pop(branch, None)
        log.info("simphone.bye_sent call_id=%s reason=%s answered=%s", call.invite.call_id,
                 reason, future.result().status if future.done() else None)

    def _bye(self, call: Call) -> tuple[SipRequest, Address]:
        invite = call.invite
        target = call.remote_target
        routes = list(call.route_set)
        uri = target
        if routes and not SipUri.parse(routes[0]).loose_route:  # strict router (RFC 2543)
            uri = routes.pop(0)
            routes.append(target)
        call.local_cseq += 1
        headers = [
            ("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={new_branch()};rport"),
            ("Max-Forwards", "70"),
            ("From", invite.get("to") if call.local_tag in invite.get("to")
             else f"{invite.get('to')};tag={call.local_tag}"),
            ("To", invite.get("from")),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{call.local_cseq} BYE"),
        ]
        headers += [("Route", f"<{r}>") for r in routes]
        headers += [("User-Agent", USER_AGENT), ("Content-Length", "0")]
        next_hop = SipUri.parse(routes[0] if routes else uri).address
        return SipRequest("BYE", uri, headers), next_hop

    def ended_by(self, call: Call, who: str, reason: str) -> None:
        """The far end ended the call (BYE, CANCEL): record it and stop the call's task."""
        if call.ended:
            return
        call.ended = True
        call.record.hangup_by = who
        call.record.hangup_reason = reason
        call.record.ended_ms = call.ms(self.clock())
        log.info("simphone.hangup call_id=%s by=%s reason=%s", call.invite.call_id, who, reason)
        if call.task is not None and not call.task.done():
            call.task.cancel()

    def forget(self, call: Call) -> None:
        """Drop the call and its INVITE transaction (after 64·T1 of absorbing retransmits)."""
        if self.calls.get(call.invite.call_id) is call:
            del self.calls[call.invite.call_id]
        self._invites.pop(self._tx_key(call.invite), None)


__all__ = ["ALLOW", "USER_AGENT", "InviteTx", "SipUas"]
