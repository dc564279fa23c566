"""`waihu user`: console accounts (bot/accounts.py) -- add, list, disable, enable, passwd,
and `set` for an agent's SIP address, campaigns and weight (bot/agent_settings.py).

A password comes from a prompt (typed twice, never echoed) or, for scripts, from the first
line of standard input with `--password-stdin`; never from the command line, which every
user of the machine can read (`ps`).  Every change is audited with the shell's login as the
actor.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot import accounts, agent_settings
from bot.cliutil import Subcommands, with_json
from bot.cliutil import database as _database
from bot.cliutil import print_json as _print_json
from bot.store.repos.audit import os_actor
from bot.store.vocab import USER_ROLES


def add_user_commands(sub: Subcommands) -> None:
    usub = sub.add_parser("user", help="console accounts (admin, supervisor, qa, agent)"
                          ).add_subparsers(dest="action", required=True)
    add = with_json(usub.add_parser("add", help="create an account"))
    add.add_argument("name", help="user name (lower-case letters, digits, . _ -)")
    add.add_argument("--role", required=True, choices=USER_ROLES)
    add.add_argument("--display-name", help="the name the console shows, e.g. 王芳")
    _password_source(add)
    agent = add.add_argument_group("agents (role agent; --sip also for a supervisor's or "
                                   "admin's phone, dialled to monitor calls)")
    _agent_options(agent, weight_default=" (default 1)")
    add.set_defaults(func=cmd_user_add)
    change = with_json(usub.add_parser(
        "set", help="change an agent's SIP address, campaigns or weight, or a supervisor's "
        "SIP address (audited)"))
    change.add_argument("name")
    _agent_options(change, weight_default="")
    change.set_defaults(func=cmd_user_set)
    listing = with_json(usub.add_parser("list", help="the accounts (never their password "
                                        "hashes)"))
    listing.add_argument("--role", choices=USER_ROLES, help="only the accounts of this role "
                         "(--role agent: the agents with their settings)")
    listing.set_defaults(func=cmd_user_list)
    for action, text in (("disable", "refuse the account's logins and end its sessions"),
                         ("enable", "allow a disabled account again")):
        change = with_json(usub.add_parser(action, help=text))
        change.add_argument("name")
        change.set_defaults(func=cmd_user_disable)
    passwd = with_json(usub.add_parser("passwd", help="set a new password (ends the "
                                       "account's sessions)"))
    passwd.add_argument("name")
    _password_source(passwd)
    passwd.set_defaults(func=cmd_user_passwd)


def _agent_options(p: argparse._ActionsContainer, *, weight_default: str) -> None:
    p.add_argument("--sip", "--sip-uri", dest="sip", metavar="URI",
                   help="SIP address of the user's phone: sip: or sips:, optional user, "
                   "host, optional port, e.g. sip:1001@pbx.example.com")
    p.add_argument("--campaigns", help="campaigns served, comma-separated names "
                   "('' for none)")
    p.add_argument("--weight", type=int, help=f"share for the weight distribution, "
                   f"{accounts.MIN_WEIGHT} to {accounts.MAX_WEIGHT}{weight_default}")


def _password_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")


def read_password(args: argparse.Namespace) -> str:
    """The new password from stdin's first line or from a prompt typed twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise accounts.AccountError("no terminal to prompt on: use --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("the two passwords differ")
    return first


def _fail(action: str, exc: Exception) -> int:
    print(f"waihu user {action}: {exc}", file=sys.stderr)
    return 2


def _show(args: argparse.Namespace, user: accounts.UserInfo, what: str) -> None:
    if args.json:
        _print_json(user.as_json())
    else:
        print(f"user {user.username} ({user.role}) {what}")


def cmd_user_add(args: argparse.Namespace) -> int:
    try:
        agent = accounts.AgentOptions(args.sip, accounts.parse_campaigns(args.campaigns),
                                      args.weight)
        accounts.check_username(args.name)
        password = read_password(args)
        user = accounts.create_user(_database(args), accounts.Passwords(), args.name,
                                    args.role, password, actor=os_actor(),
                                    display_name=args.display_name, agent=agent)
    except accounts.AccountError as exc:
        return _fail("add", exc)
    _show(args, user, "created")
    return 0


def cmd_user_set(args: argparse.Namespace) -> int:
    try:
        options = accounts.AgentOptions(args.sip, accounts.parse_campaigns(args.campaigns),
                                        args.weight)
        change = agent_settings.change_agent(_database(args), args.name, options,
                                             actor=os_actor())
    except accounts.AccountError as exc:
        return _fail("set", exc)
    if args.json:
        _print_json(change.as_json())
    else:
        print(f"agent {change.user.username}: {change.describe()}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = [user for user in accounts.list_users(_database(args))
             if args.role is None or user.role == args.role]
    if args.json:
        _print_json([user.as_json() for user in users])
        return 0
    for user in users:
        state = "disabled" if user.disabled else "active"
        extra = ""
        if user.agent is not None:
            extra = (f"  {user.agent.sip_uri or '-'}  weight {user.agent.weight}  "
                     f"campaigns {','.join(user.agent.campaigns) or '-'}")
        print(f"{user.username:<20} {user.role:<11} {state:<9}{extra}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    try:
        user = accounts.set_disabled(_database(args), args.name, args.action == "disable",
                                     actor=os_actor())
    except accounts.AccountError as exc:
        return _fail(args.action, exc)
    _show(args, user, "disabled" if user.disabled else "enabled")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    try:
        password = read_password(args)
        user = accounts.change_password(_database(args), accounts.Passwords(), args.name,
                                        password, actor=os_actor())
    except accounts.AccountError as exc:
        return _fail("passwd", exc)
    _show(args, user, "has a new password")
    return 0
