"""The secrets of the services agree across the two environments, and the code Rasa
imports (waihu_rasa/) needs nothing of the project's own environment."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import yaml

import waihu_rasa
from actions import server as actions_server
from bot import channel, services
from waihu_rasa.run import rasa_argv

REPO = Path(__file__).resolve().parents[2]


def test_both_environments_name_the_same_secrets() -> None:
    assert waihu_rasa.TOKEN_ENV == channel.TOKEN_ENV
    assert actions_server.TOKEN_ENV == services.ACTIONS_TOKEN_ENV
    assert (waihu_rasa.MIN_TOKEN_CHARS == services.MIN_TOKEN_CHARS
            == actions_server.MIN_TOKEN_CHARS)
    assert len(services.new_token()) >= services.MIN_TOKEN_CHARS


def test_rasa_is_configured_to_send_and_ask_for_the_secrets() -> None:
    credentials = (REPO / "credentials.yml").read_text()
    assert "rest" not in yaml.safe_load(credentials)  # no open stock channel
    assert f"waihu_rasa.channel.TokenRestInput:\n  token: ${{{channel.TOKEN_ENV}}}\n" \
        in credentials
    header = f"Authorization: Bearer ${{{services.ACTIONS_TOKEN_ENV}}}\n"  # unquoted
    assert header in (REPO / "endpoints.yml").read_text()
    assert header in services.endpoints_yaml("http://127.0.0.1:1")


def test_the_rasa_side_imports_only_rasa_sanic_and_the_standard_library() -> None:
    allowed = {"rasa", "sanic", "waihu_rasa", "__future__"} | set(sys.stdlib_module_names)
    for path in (REPO / "waihu_rasa").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, (path.name, roots - allowed)


def test_a_token_starting_with_a_dash_reaches_rasa_as_the_token() -> None:
    # secrets.token_urlsafe gives such a token about once in 64 starts; with the token as
    # a separate argument, rasa's argparse took it for an option and refused to start.
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("subcommand")
    parser.add_argument("-t", "--auth-token")
    parser.add_argument("--enable-api", action="store_true")
    token = "-cCkwj-4buKZvoU49n3sWJy15Fc"

    parsed = parser.parse_args(rasa_argv(["run", "--enable-api"], token)[1:])

    assert parsed.auth_token == token
    assert parsed.subcommand == "run" and parsed.enable_api
