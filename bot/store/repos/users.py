"""Console accounts and agent profiles (bot.store.models.User, Agent, AgentCampaign).

Rows only: the password hash arrives hashed (bot/accounts.py hashes and checks), and the
rules of throttling are bot/accounts.py's too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Agent, AgentCampaign, User
from bot.store.repos.common import NotFound
from bot.store.vocab import USER_ROLES, require


class UserRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, username: str, role: str, password_hash: str,
            display_name: str | None = None) -> User:
        require(role, USER_ROLES, "role")
        user = User(username=username, role=role, password_hash=password_hash,
                    display_name=display_name)
        self.session.add(user)
        self.session.flush()
        return user

    def by_name(self, username: str) -> User | None:
        return self.session.scalar(select(User).where(User.username == username))

    def get(self, username: str) -> User:
        user = self.by_name(username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    def by_id(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def set_agent(self, user: User, *, sip_uri: str | None = None,
                  campaigns: Iterable[str] | None = None, weight: int | None = None) -> Agent:
        """Create or change *user*'s agent profile; arguments left None keep their value."""
        agent = user.agent
        if agent is None:
            agent = Agent(user_id=user.id)
            self.session.add(agent)
            user.agent = agent
        if sip_uri is not None:
            agent.sip_uri = sip_uri
        if weight is not None:
            agent.weight = weight
        if campaigns is not None:
            agent.campaign_links = [AgentCampaign(agent_id=user.id, campaign=name)
                                    for name in sorted(set(campaigns))]
        self.session.flush()
        return agent

    def agents_for(self, campaign: str) -> list[Agent]:
        """The agents who serve *campaign* (by name), enabled accounts only."""
        query = (select(Agent).join(AgentCampaign).join(User)
                 .where(AgentCampaign.campaign == campaign, User.disabled.is_(False))
                 .order_by(Agent.user_id))
        return list(self.session.scalars(query))

    def record_failure(self, user: User, locked_until: datetime | None) -> None:
        user.failed_logins += 1
        if locked_until is not None:
            user.locked_until = locked_until
        self.session.flush()

    def record_login(self, user: User, at: datetime) -> None:
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = at
        self.session.flush()

    def set_password(self, user: User, password_hash: str) -> None:
        """A new hash; a password change ends the sessions issued before it."""
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        user.session_version += 1
        self.session.flush()

    def rehash(self, user: User, password_hash: str) -> None:
        """The same password under the current hashing parameters (sessions stay)."""
        user.password_hash = password_hash
        self.session.flush()

    def set_disabled(self, user: User, disabled: bool) -> None:
        user.disabled = disabled
        user.session_version += 1
        self.session.flush()

    def list(self, role: str | None = None) -> list[User]:
        query = select(User).order_by(User.username)
        if role is not None:
            query = query.where(User.role == role)
        return list(self.session.scalars(query))
