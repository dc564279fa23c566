"""Waihu's code that runs inside the Rasa server (`.venv-rasa`, Python 3.10).

Rasa imports it by module path (credentials.yml) with the repository as its working
directory, so it imports only the standard library, rasa and sanic: nothing of `bot/`,
`voice/` or `actions/`, whose dependencies live in the other environment (`.venv`).

- `channel`: the REST channel the gateway talks to, closed without the Rasa token;
- `run`: `rasa run` with `--auth-token` taken from the environment, not the command line.
"""

TOKEN_ENV = "WAIHU_RASA_TOKEN"
MIN_TOKEN_CHARS = 16


def token_problem(token: str | None) -> str | None:
    """Why *token* cannot protect the server, or None when it can."""
    if not token:
        return f"{TOKEN_ENV} is not set"
    if len(token) < MIN_TOKEN_CHARS:
        return f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters"
    return None
