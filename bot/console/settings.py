"""The console's settings: where it listens and how it guards its sessions."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta

from bot.accounts import LoginPolicy

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


@dataclass(frozen=True)
class ConsoleSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Behind TLS (a reverse proxy terminating HTTPS): the session cookie gets Secure and
    # the pages Strict-Transport-Security.  Off for plain http on 127.0.0.1.
    secure_cookies: bool = False
    # The one peer whose X-Forwarded-For names the client (the reverse proxy); no other
    # peer's header is believed, so a client cannot pick its own address for throttling.
    trusted_proxy: str | None = None
    session_lifetime: timedelta = timedelta(hours=12)  # a shift; then log in again
    login: LoginPolicy = field(default_factory=LoginPolicy)
    address_failures: int = 20  # failed logins from one address within the window ...
    address_window: timedelta = timedelta(minutes=15)  # ... refuse that address for it
    ws_recheck_s: float = 30.0  # an open WebSocket re-reads its account this often
    timezone: str = "Asia/Shanghai"  # times on the pages, and the days of the figures
    # The desk watcher (watch.py) ends due after-call work and reads every agent's
    # presence this often; 0: not at all (tests that drive it themselves).
    desk_poll_s: float = 1.0

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"
