"""The REST channel of the telephone's side, closed to whoever lacks the Rasa token.

Rasa's `--auth-token` guards its HTTP API (`/model/parse`, `/conversations/…`) but not the
channel webhooks: with the stock `rest` channel, anyone on the machine could post a
customer's turn for a live call id (`/webhooks/rest/webhook`, sender = call id). This is
Rasa's `RestInput` with the same token checked first, in constant time, and answered with
401 (no token) or 403 (wrong token) before the message reaches the agent. It takes the
token the way the HTTP API does (`?token=…`), so the gateway has one convention for both.

It is registered under its own name (`/webhooks/waihu/webhook`), not as `rest`: a Rasa
started with the stock credentials (an open `rest` channel) then answers the gateway 404,
and the mistake shows at the first call instead of leaving the door open.

credentials.yml:

    waihu_rasa.channel.TokenRestInput:
      token: ${WAIHU_RASA_TOKEN}
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from waihu_rasa import TOKEN_ENV, token_problem

log = logging.getLogger("waihu.rasa.channel")


class TokenRestInput(RestInput):
    """`RestInput` that refuses every request without the Rasa token."""

    @classmethod
    def name(cls) -> str:
        return "waihu"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        token = (credentials or {}).get("token")
        problem = token_problem(token)
        if problem is not None:
            raise ValueError(f"the waihu channel needs a token (credentials.yml: "
                             f"token: ${{{TOKEN_ENV}}}): {problem}")
        return cls(str(token))

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
                  ) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def require_token(request: Request) -> HTTPResponse | None:
            given = request.args.get("token")
            if not given:
                log.warning("channel.refused reason=no_token path=%s", request.path)
                return response.json(
                    {"error": "unauthorized: this channel requires the Rasa token "
                     f"({TOKEN_ENV}) as the `token` query parameter"}, status=401)
            if not hmac.compare_digest(given.encode(), self._expected):
                log.warning("channel.refused reason=wrong_token path=%s", request.path)
                return response.json({"error": "forbidden: wrong Rasa token"}, status=403)
            return None

        return webhook
