"""Supervisors monitoring live calls (listen, whisper, barge), in units of work.

The console and the gateway may run in different processes, so they meet in the
``monitor_sessions`` table, as the agent desk's offers do (bot/agents/handover.py): the
console writes a supervisor's request, mode changes and stop (`request`, `change_mode`,
`stop`, each audited in the same unit of work); the gateway carrying the call reads it back
(`open_for_call`, `read`) and writes how it goes (`mark_dialling`, `mark_active`,
`set_heard_by`, `mark_ended`).  Functions take the caller's session and return plain
values (`MonitorSeen`), never rows.

The rules live here: only a supervisor or the administrator monitors; their phone is the
SIP address of their phone profile (the same profile and `waihu user set --sip` as an
agent's: bot/accounts.py); one open session per call and per supervisor; only a live call
(a dialler lease held, not ended) can be monitored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.accounts import UserInfo
from bot.store.models import MONITOR_MODES, Agent, Call, CallAttempt, MonitorSession, User
from bot.store.repos.audit import AuditRepo

MONITOR_ROLES = ("supervisor", "admin")
OPEN_STATES = ("requested", "dialling", "active")
# Who hears the supervisor in each mode, with an agent on the call and without (bot only):
# a whisper on a bot-only call is heard by nobody, i.e. it is a listen, and says so.
HEARD_BY = {("listen", True): "nobody", ("listen", False): "nobody",
            ("whisper", True): "agent", ("whisper", False): "nobody",
            ("barge", True): "customer+agent", ("barge", False): "customer"}


class MonitorRefused(ValueError):
    """Why a monitor request or change cannot happen (shown to the supervisor)."""


@dataclass(frozen=True)
class MonitorSeen:
    session_id: int
    call_id: str
    supervisor_id: int
    supervisor: str
    sip_uri: str
    mode: str
    state: str
    heard_by: str | None
    end_reason: str | None

    def as_json(self) -> dict[str, object]:
        return {"session_id": self.session_id, "call_id": self.call_id,
                "supervisor": self.supervisor, "mode": self.mode, "state": self.state,
                "heard_by": self.heard_by, "end_reason": self.end_reason}


def heard_by(mode: str, agent_on_call: bool) -> str:
    return HEARD_BY[(mode, agent_on_call)]


def _seen(session: Session, row: MonitorSession) -> MonitorSeen:
    user = session.get(User, row.supervisor_id)
    return MonitorSeen(row.id, row.call_id, row.supervisor_id,
                       user.username if user is not None else str(row.supervisor_id),
                       row.sip_uri, row.mode, row.state, row.heard_by, row.end_reason)


def _check_mode(mode: str) -> None:
    if mode not in MONITOR_MODES:
        raise MonitorRefused(f"unknown mode {mode!r}: listen, whisper or barge")


def _is_live(session: Session, call_id: str) -> bool:
    call = session.get(Call, call_id)
    if call is None or call.ended_at is not None:
        return False
    lease = session.scalar(select(CallAttempt.id).where(
        CallAttempt.call_id == call_id, CallAttempt.lease_expires_at.is_not(None),
        CallAttempt.completed_at.is_(None), CallAttempt.ended_at.is_(None)))
    return lease is not None


def _open_of(session: Session, *, call_id: str | None = None,
             supervisor_id: int | None = None) -> MonitorSession | None:
    query = select(MonitorSession).where(MonitorSession.state.in_(OPEN_STATES))
    if call_id is not None:
        query = query.where(MonitorSession.call_id == call_id)
    if supervisor_id is not None:
        query = query.where(MonitorSession.supervisor_id == supervisor_id)
    return session.scalars(query.order_by(MonitorSession.id.desc())).first()


def _audit(session: Session, user: UserInfo, action: str, row: MonitorSession,
           at: datetime, **detail: object) -> None:
    AuditRepo(session).record(f"user:{user.username}", action, row.call_id, at=at,
                              session_id=row.id, mode=row.mode, **detail)


# --- the console's side ------------------------------------------------------------------


def request(session: Session, user: UserInfo, call_id: str, mode: str, at: datetime, *,
            address: str = "") -> MonitorSeen:
    """A supervisor asks to monitor *call_id* in *mode*; audited ``monitor.requested``."""
    if user.role not in MONITOR_ROLES:
        raise PermissionError(f"role {user.role} may not monitor calls")
    _check_mode(mode)
    profile = session.get(Agent, user.id)
    if profile is None or not profile.sip_uri:
        raise MonitorRefused("您的账户没有话机地址 your account has no SIP phone: "
                             "waihu user set NAME --sip sip:...")
    if not _is_live(session, call_id):
        raise MonitorRefused("这通电话已结束 the call is not live")
    if _open_of(session, call_id=call_id) is not None:
        raise MonitorRefused("这通电话已有人在监听 someone is monitoring this call already")
    if _open_of(session, supervisor_id=user.id) is not None:
        raise MonitorRefused("您正在监听另一通电话 you are monitoring another call: stop it first")
    row = MonitorSession(call_id=call_id, supervisor_id=user.id, sip_uri=profile.sip_uri,
                         mode=mode, state="requested", requested_at=at)
    session.add(row)
    session.flush()
    _audit(session, user, "monitor.requested", row, at, address=address)
    return _seen(session, row)


def _own_open(session: Session, user: UserInfo, session_id: int) -> MonitorSession:
    row = session.get(MonitorSession, session_id)
    if row is None or (row.supervisor_id != user.id and user.role != "admin"):
        raise PermissionError(f"monitor session {session_id} is not yours")
    if row.state not in OPEN_STATES:
        raise MonitorRefused(f"监听已结束 the session has ended ({row.end_reason})")
    return row


def change_mode(session: Session, user: UserInfo, session_id: int, mode: str,
                at: datetime, *, address: str = "") -> MonitorSeen:
    """The supervisor switches mode; audited ``monitor.mode`` (before and after)."""
    _check_mode(mode)
    row = _own_open(session, user, session_id)
    before = row.mode
    if before != mode:
        row.mode = mode
        session.flush()
        _audit(session, user, "monitor.mode", row, at, before=before, address=address)
    return _seen(session, row)


def stop(session: Session, user: UserInfo, session_id: int, at: datetime, *,
         address: str = "") -> MonitorSeen:
    """The supervisor stops; audited ``monitor.stopped``.  The gateway hangs up their phone
    when it reads the row back."""
    row = _own_open(session, user, session_id)
    row.state, row.ended_at, row.end_reason = "ended", at, "stopped"
    session.flush()
    _audit(session, user, "monitor.stopped", row, at, address=address)
    return _seen(session, row)


def open_of_supervisor(session: Session, supervisor_id: int) -> MonitorSeen | None:
    row = _open_of(session, supervisor_id=supervisor_id)
    return None if row is None else _seen(session, row)


def latest_of_supervisor(session: Session, supervisor_id: int) -> MonitorSeen | None:
    """The supervisor's open session, else their last one (the wall shows how it ended)."""
    row = session.scalars(select(MonitorSession)
                          .where(MonitorSession.supervisor_id == supervisor_id)
                          .order_by(MonitorSession.id.desc())).first()
    return None if row is None else _seen(session, row)


def open_sessions(session: Session, call_ids: list[str]) -> dict[str, MonitorSeen]:
    """The open session of each of *call_ids* that has one (the agent's coaching banner)."""
    if not call_ids:
        return {}
    rows = session.scalars(select(MonitorSession).where(
        MonitorSession.call_id.in_(call_ids), MonitorSession.state.in_(OPEN_STATES)))
    return {row.call_id: _seen(session, row) for row in rows}


# --- the gateway's side ------------------------------------------------------------------


def open_for_call(session: Session, call_id: str) -> MonitorSeen | None:
    """The call's session the gateway has not taken yet (``requested``), if any."""
    row = session.scalars(select(MonitorSession).where(
        MonitorSession.call_id == call_id, MonitorSession.state == "requested")).first()
    return None if row is None else _seen(session, row)


def read(session: Session, session_id: int) -> MonitorSeen:
    row = session.get(MonitorSession, session_id)
    if row is None:
        raise LookupError(f"no monitor session {session_id}")
    return _seen(session, row)


def mark_dialling(session: Session, session_id: int) -> MonitorSeen:
    row = session.get(MonitorSession, session_id)
    assert row is not None
    if row.state == "requested":
        row.state = "dialling"
        session.flush()
    return _seen(session, row)


def mark_active(session: Session, session_id: int, at: datetime, heard: str) -> MonitorSeen:
    row = session.get(MonitorSession, session_id)
    assert row is not None
    if row.state in ("requested", "dialling"):
        row.state, row.started_at, row.heard_by = "active", at, heard
        session.flush()
    return _seen(session, row)


def set_heard_by(session: Session, session_id: int, heard: str) -> None:
    row = session.get(MonitorSession, session_id)
    if row is not None and row.heard_by != heard:
        row.heard_by = heard
        session.flush()


def mark_ended(session: Session, session_id: int, at: datetime, reason: str) -> MonitorSeen:
    """The gateway ends the session (the call ended, the phone hung up or never answered);
    one the supervisor stopped keeps its reason.  Audited ``monitor.ended`` by the
    gateway when it was not the supervisor's stop."""
    row = session.get(MonitorSession, session_id)
    assert row is not None
    if row.state != "ended":
        row.state, row.ended_at, row.end_reason = "ended", at, reason
        session.flush()
        AuditRepo(session).record("service:gateway", "monitor.ended", row.call_id, at=at,
                                  session_id=row.id, mode=row.mode, reason=reason)
    return _seen(session, row)
