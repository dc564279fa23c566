"""The action server: `rasa_sdk`'s, made to work with Rasa 3.6's selective domain.

    python -m actions.server --actions actions --port 5055

Rasa sends the whole domain with every action call unless `enable_selective_domain` is set
in endpoints.yml, and serialising it cost ~50 ms of a ~70 ms turn (docs/benchmarks.md).
With selective domain, rasa-sdk 3.21 expects a `domain_digest` that Rasa 3.6 never sends
and answers 449 ("retry with the domain"), which Rasa 3.6 does not understand. Our actions
need only the response templates, which they read from domain.yml (actions.runtime.domain),
so a call without the domain is served with that instead of being refused.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import __main__ as sdk_main
from rasa_sdk.executor import ActionExecutor

from actions import runtime

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


def main() -> None:
    sdk_main.main()


if __name__ == "__main__":
    main()
