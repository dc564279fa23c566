"""The action server: `rasa_sdk`'s, closed to everyone but Rasa, and made to work with
Rasa 3.6's selective domain.

    WAIHU_ACTIONS_TOKEN=… python -m actions.server --actions actions --port 5055 \
        [--interface 127.0.0.1]

**Nobody else gets in.** The actions record consents, do-not-call entries, callbacks and
escalations, so the server answers only requests that carry the shared secret of
`WAIHU_ACTIONS_TOKEN` as `Authorization: Bearer …` (Rasa sends it: the `headers` of
`action_endpoint` in the endpoints file). A header, not Rasa's `token:` option, because that
one travels in the query string, which access logs write down. A request without it gets
401, one with a wrong secret 403, both with a JSON body that says so; `/health` stays open
and says only `{"status": "ok"}`. The server refuses to start without a secret of at least
16 characters: there is no "open for development" switch, because the open server is the
hole this closes, and a development shell can export a secret as easily as pass a flag.
It listens on 127.0.0.1 unless `--interface` (or `WAIHU_ACTIONS_HOST`) names another
address; rasa_sdk itself binds 0.0.0.0.

**Selective domain.** Rasa sends the whole domain with every action call unless
`enable_selective_domain` is set in endpoints.yml, and serialising it cost ~50 ms of a ~70 ms
turn (docs/benchmarks.md). With selective domain, rasa-sdk 3.21 expects a `domain_digest`
that Rasa 3.6 never sends and answers 449 ("retry with the domain"), which Rasa 3.6 does not
understand. Our actions need only the response templates, which they read from domain.yml
(actions.runtime.domain), so a call without the domain is served with that instead of being
refused.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from functools import partial
from typing import Any

from rasa_sdk import endpoint as sdk_endpoint
from rasa_sdk import utils as sdk_utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from actions import runtime

TOKEN_ENV = "WAIHU_ACTIONS_TOKEN"
HOST_ENV = "WAIHU_ACTIONS_HOST"
MIN_TOKEN_CHARS = 16
# Open without the secret: a liveness probe that says nothing but "ok".
OPEN_PATHS = frozenset({"/health"})

log = logging.getLogger("waihu.actions.server")

_update_and_return_domain = ActionExecutor.update_and_return_domain


def _domain_or_file(self: ActionExecutor, payload: dict[str, Any],
                    action_name: str) -> dict[str, Any] | None:
    if payload.get("domain") is None and not self.is_domain_digest_valid(
            payload.get("domain_digest")):
        return runtime.domain()
    return _update_and_return_domain(self, payload, action_name)


# Patched at import, not in main(): Sanic serves from a worker process that imports this
# module again (as __mp_main__) without calling main().
ActionExecutor.update_and_return_domain = _domain_or_file  # type: ignore[method-assign]


def authorization(token: str) -> str:
    """The header value Rasa sends (endpoints file: `action_endpoint.headers`)."""
    return f"Bearer {token}"


def token_problem(token: str | None) -> str | None:
    """Why *token* cannot protect the server, or None when it can."""
    if not token:
        return f"{TOKEN_ENV} is not set"
    if len(token) < MIN_TOKEN_CHARS:
        return f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters"
    return None


async def _check_secret(expected: bytes, request: Request) -> HTTPResponse | None:
    if request.path in OPEN_PATHS:
        return None
    given = request.headers.get("authorization", "")
    if not given:
        log.warning("actions.refused reason=no_secret path=%s peer=%s", request.path,
                    request.ip)
        return response.json({"error": "unauthorized: this action server requires the "
                              f"shared secret ({TOKEN_ENV}) as 'Authorization: Bearer ...'"},
                             status=401, headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode(), expected):
        log.warning("actions.refused reason=wrong_secret path=%s peer=%s", request.path,
                    request.ip)
        return response.json({"error": "forbidden: wrong shared secret"}, status=403)
    return None


def create_app(executor: ActionExecutor, token: str, **options: Any) -> Sanic:
    """rasa_sdk's app with the secret checked before every route but /health.

    Module-level so that Sanic's AppLoader can build it again in each worker."""
    app = sdk_endpoint.create_app_for_serve(executor, **options)
    app.on_request(partial(_check_secret, authorization(token).encode()), priority=100)
    return app


def serve(executor: ActionExecutor, *, host: str, port: int, token: str,
          cors: list[str] | None = None, auto_reload: bool = False,
          endpoints: str = "endpoints.yml") -> None:
    """rasa_sdk.endpoint.run with our app factory and the host to bind."""
    loader = AppLoader(factory=partial(create_app, executor, token, cors_origins=cors,
                                       auto_reload=auto_reload, endpoints=endpoints))
    app = loader.load()
    log.info("actions.listening host=%s port=%d", host, port)
    app.prepare(host=host, port=port, workers=sdk_utils.number_of_sanic_workers())
    Sanic.serve(primary=app, app_loader=loader)


def _parser() -> argparse.ArgumentParser:
    parser = sdk_endpoint.create_argument_parser()
    parser.add_argument("--interface", default=os.environ.get(HOST_ENV, "127.0.0.1"),
                        help=f"address to listen on (default: ${HOST_ENV}, else 127.0.0.1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    token = os.environ.get(TOKEN_ENV)
    problem = token_problem(token)
    if problem is not None:
        print(f"actions.server: {problem}; refusing to serve the actions without a shared "
              "secret. Set it to a random value (e.g. `python -c 'import secrets; "
              "print(secrets.token_urlsafe(32))'`) and give Rasa the same one "
              "(endpoints.yml: action_endpoint.headers).", file=sys.stderr)
        return 2
    if args.grpc or args.ssl_certificate:
        print("actions.server: --grpc and --ssl-* are not supported here", file=sys.stderr)
        return 2
    assert token is not None
    sdk_utils.configure_colored_logging(args.loglevel)
    sdk_utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
                                     args.log_file, args.loglevel, args.logging_config_file)
    sdk_utils.update_sanic_log_level()
    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions)
    serve(executor, host=args.interface, port=args.port, token=token, cors=args.cors,
          auto_reload=args.auto_reload, endpoints=args.endpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
