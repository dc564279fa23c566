"""Changing an agent's settings after the account exists: the SIP address the gateway calls,
the campaigns they serve and their weight (`waihu user set`, the /admin page's agent form).
A supervisor's (or an admin's) phone for monitoring calls is set the same way, a SIP address
only (bot/accounts.py, PHONE_ROLES).

Checked as at creation (bot/accounts.py `check_agent`, bot/sip_address.py), with one rule
more: the campaigns named here must exist.  Creation keeps accepting a campaign that does
not exist yet (an agent can be set up before the campaign file is loaded); a change is made
while the campaigns are running, where a misspelt name would silently take the agent out of
the campaign they were meant for.

Every change is one audit entry ``agent.changed`` with the changed fields' values before and
after, in the same unit of work as the change; a request that changes nothing writes none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.accounts import PHONE_ROLES, AccountError, AgentOptions, UserInfo, check_agent
from bot.store import Database
from bot.store.models import Agent
from bot.store.repos.audit import AuditRepo
from bot.store.repos.campaigns import CampaignRepo
from bot.store.repos.users import UserRepo

AUDIT_ACTION = "agent.changed"
NAMES_SHOWN = 10  # known campaigns listed in the refusal of an unknown one


class NotAnAgent(AccountError):
    """No such user, or a user who is not an agent."""


@dataclass(frozen=True)
class AgentChange:
    user: UserInfo
    before: dict[str, Any]  # only the fields that changed
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.after)

    def as_json(self) -> dict[str, Any]:
        return {**self.user.as_json(), "changed": {"before": self.before, "after": self.after}}

    def describe(self) -> str:
        if not self.changed:
            return "unchanged"
        return "; ".join(f"{key} {_shown(self.before[key])} -> {_shown(self.after[key])}"
                         for key in self.after)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value) or "(none)"
    return "(none)" if value is None else str(value)


def _settings(agent: Agent) -> dict[str, Any]:
    return {"sip_uri": agent.sip_uri, "campaigns": list(agent.campaigns),
            "weight": agent.weight}


def change_agent(db: Database, username: str, options: AgentOptions, *,
                 actor: str) -> AgentChange:
    """Set the given settings of agent *username* (None: keep); AccountError says why not."""
    if not options.given:
        raise AccountError("nothing to change: give a SIP address, campaigns or a weight")
    options = check_agent(options)
    with db.session() as session:
        users = UserRepo(session)
        user = users.by_name(username)
        if user is None:
            raise NotAnAgent(f"no user {username!r}")
        if user.role in PHONE_ROLES and not (options.campaigns or options.weight is not None):
            if user.agent is None:  # a supervisor's first phone: their profile starts here
                users.set_agent(user)
        elif user.role != "agent" or user.agent is None:
            raise NotAnAgent(f"user {username!r} is not an agent (role {user.role}); "
                             f"a supervisor or admin may only be given a SIP address")
        assert user.agent is not None
        if options.campaigns:
            _check_campaigns_exist(CampaignRepo(session), options.campaigns)
        wanted: dict[str, Any] = {"sip_uri": options.sip_uri,
                                  "campaigns": None if options.campaigns is None
                                  else sorted(set(options.campaigns)),
                                  "weight": options.weight}
        current = _settings(user.agent)
        after = {key: value for key, value in wanted.items()
                 if value is not None and value != current[key]}
        before = {key: current[key] for key in after}
        if after:
            users.set_agent(user, sip_uri=after.get("sip_uri"),
                            campaigns=after.get("campaigns"), weight=after.get("weight"))
            AuditRepo(session).record(actor, AUDIT_ACTION, username, before=before,
                                      after=after)
        return AgentChange(UserInfo.of(user), before, after)


def _check_campaigns_exist(campaigns: CampaignRepo, names: tuple[str, ...]) -> None:
    missing = [name for name in names if campaigns.by_name(name) is None]
    if missing:
        known = [c.name for c in campaigns.list()]
        listed = ", ".join(known[:NAMES_SHOWN]) + (", ..." if len(known) > NAMES_SHOWN
                                                   else "")
        raise AccountError(f"no campaign named {', '.join(map(repr, missing))} "
                           f"(campaigns: {listed or 'none yet'})")
