"""Changing an agent's settings after the account exists: the SIP address check
(bot/sip_address.py), the service (bot/agent_settings.py) on both databases, and
`waihu user set` / `waihu user list --role agent` (bot/user_commands.py)."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher

from bot import accounts, agent_settings
from bot.cli import main
from bot.sip_address import SipAddress, check_sip_address
from bot.store import AuditRepo, CampaignRepo, Database

CHEAP = accounts.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


# --- the SIP address ---------------------------------------------------------------------


@pytest.mark.parametrize("text, parts", [
    ("sip:1001@pbx.example.com", ("sip", "1001", "pbx.example.com", None)),
    ("sips:agent.wang@10.0.0.21:5061", ("sips", "agent.wang", "10.0.0.21", 5061)),
    ("sip:127.0.0.1:5070", ("sip", None, "127.0.0.1", 5070)),
    ("SIP:1001@[2001:db8::1]:5060", ("sip", "1001", "[2001:db8::1]", 5060)),
    ("sip:%2B8613800000000@gw", ("sip", "%2B8613800000000", "gw", None)),
])
def test_a_sip_address_is_scheme_user_host_and_port(
        text: str, parts: tuple[str, str | None, str, int | None]) -> None:
    address = SipAddress.parse(text)
    assert (address.scheme, address.user, address.host, address.port) == parts


@pytest.mark.parametrize("text, message", [
    ("tel:+8613800000000", "starts with sip: or sips:"),
    ("1001@pbx", "starts with sip: or sips:"),
    ("http://pbx.example.com", "starts with sip: or sips:"),
    ("sip:", "has no host"),
    ("sip:1001@", "has no host"),
    ("sip:@pbx", "user part"),
    ("sip:1001@pbx:0", "port is a number from 1 to 65535"),
    ("sip:1001@pbx:70000", "port is a number from 1 to 65535"),
    ("sip:1001@pbx:50a", "port is a number"),
    ("sip:1001@pbx;transport=tcp", "parameters"),
    ("sip:1001@pbx?subject=x", "headers"),
    ("<sip:1001@pbx>", "starts with sip:"),
    ("sip:1001@pbx .com", "space"),
    ("sip:1001@pbx_1.example.com", "not a host name"),
    ("sip:1001@-pbx.example.com", "not a host name"),
    ("sip:1001@300.1.1.1", "not an IPv4 address"),
    ("sip:1001@[2001:db8::zz]", "not an IPv6 address"),
    ("sip:1001@[2001:db8::1", "closing ']'"),
    ("sip:1001@" + "a" * 195, "at most 200"),
])
def test_anything_else_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        SipAddress.parse(text)


def test_the_checked_address_is_stripped_and_prints_back() -> None:
    assert check_sip_address("  sip:1001@pbx:5060 ") == "sip:1001@pbx:5060"
    assert str(SipAddress.parse("sips:a@[::1]:5061")) == "sips:a@[::1]:5061"


# --- the service ---------------------------------------------------------------------------


def _seed(db: Database) -> None:
    with db.session() as session:
        for name in ("trial", "survey", "renewal"):
            CampaignRepo(session).add(name, "marketing", {}, "a" * 64)
    accounts.create_user(db, CHEAP, "wang", "agent", "a good password", actor="test",
                         agent=accounts.AgentOptions("sip:1001@10.0.0.5", ("trial",), 2))
    accounts.create_user(db, CHEAP, "li", "qa", "a good password", actor="test")


def _agent(db: Database, name: str = "wang") -> accounts.AgentInfo:
    [user] = [u for u in accounts.list_users(db) if u.username == name]
    assert user.agent is not None
    return user.agent


def test_a_change_is_stored_and_audited_with_before_and_after(db: Database) -> None:
    _seed(db)
    change = agent_settings.change_agent(
        db, "wang", accounts.AgentOptions("sip:1001@pbx.example.com:5070",
                                          ("survey", "renewal"), 5), actor="user:boss")
    assert change.after == {"sip_uri": "sip:1001@pbx.example.com:5070",
                            "campaigns": ["renewal", "survey"], "weight": 5}
    assert _agent(db) == accounts.AgentInfo("sip:1001@pbx.example.com:5070",
                                            ("renewal", "survey"), 5)
    with db.session() as session:
        [entry] = AuditRepo(session).entries(action="agent.changed", subject="wang")
    assert entry.actor == "user:boss"
    assert entry.detail == {
        "before": {"sip_uri": "sip:1001@10.0.0.5", "campaigns": ["trial"], "weight": 2},
        "after": {"sip_uri": "sip:1001@pbx.example.com:5070",
                  "campaigns": ["renewal", "survey"], "weight": 5}}


def test_only_the_given_and_changed_fields_are_touched(db: Database) -> None:
    _seed(db)
    change = agent_settings.change_agent(db, "wang", accounts.AgentOptions(weight=3),
                                         actor="test")
    assert (change.before, change.after) == ({"weight": 2}, {"weight": 3})
    assert _agent(db) == accounts.AgentInfo("sip:1001@10.0.0.5", ("trial",), 3)
    same = agent_settings.change_agent(db, "wang", accounts.AgentOptions(
        "sip:1001@10.0.0.5", ("trial",), 3), actor="test")
    assert not same.changed and same.describe() == "unchanged"
    off = agent_settings.change_agent(db, "wang", accounts.AgentOptions(campaigns=()),
                                      actor="test")
    assert off.after == {"campaigns": []} and _agent(db).campaigns == ()
    with db.session() as session:
        assert len(AuditRepo(session).entries(action="agent.changed")) == 2  # not "same"


@pytest.mark.parametrize("options, message", [
    (accounts.AgentOptions(), "nothing to change"),
    (accounts.AgentOptions(sip_uri="tel:1001"), "sip: or sips:"),
    (accounts.AgentOptions(sip_uri="sip:1001@pbx:99999"), "port"),
    (accounts.AgentOptions(weight=0), "from 1 to 100"),
    (accounts.AgentOptions(weight=101), "from 1 to 100"),
    (accounts.AgentOptions(campaigns=("trial", "trail")), "no campaign named 'trail'"),
])
def test_a_refused_change_changes_nothing(db: Database, options: accounts.AgentOptions,
                                          message: str) -> None:
    _seed(db)
    with pytest.raises(accounts.AccountError, match=message):
        agent_settings.change_agent(db, "wang", options, actor="test")
    assert _agent(db) == accounts.AgentInfo("sip:1001@10.0.0.5", ("trial",), 2)
    with db.session() as session:
        assert AuditRepo(session).entries(action="agent.changed") == []


def test_only_an_agent_has_agent_settings(db: Database) -> None:
    _seed(db)
    for name, message in (("li", "not an agent"), ("ghost", "no user")):
        with pytest.raises(agent_settings.NotAnAgent, match=message):
            agent_settings.change_agent(db, name, accounts.AgentOptions(weight=3),
                                        actor="test")


# --- waihu user set / list --role ------------------------------------------------------------


@pytest.fixture
def url(sqlite_db: Database) -> str:
    _seed(sqlite_db)
    return sqlite_db.url.render_as_string(hide_password=False)


def _run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--database", url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_user_set_changes_an_agent_and_says_what_changed(
        url: str, sqlite_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, url, "user", "set", "wang", "--sip-uri",
                        "sips:1001@pbx.example.com", "--campaigns", "trial, survey",
                        "--weight", "7")
    assert code == 0
    assert out.strip() == ("agent wang: sip_uri sip:1001@10.0.0.5 -> sips:1001@pbx.example.com"
                           "; campaigns trial -> survey,trial; weight 2 -> 7")
    code, out, _ = _run(capsys, url, "user", "set", "wang", "--sip", "sip:1002@pbx",
                        "--json")
    assert code == 0
    body = json.loads(out)
    assert body["agent"] == {"sip_uri": "sip:1002@pbx", "campaigns": ["survey", "trial"],
                             "weight": 7}
    assert body["changed"] == {"before": {"sip_uri": "sips:1001@pbx.example.com"},
                               "after": {"sip_uri": "sip:1002@pbx"}}
    with sqlite_db.session() as session:
        actors = {e.actor for e in AuditRepo(session).entries(action="agent.changed")}
    assert len(actors) == 1 and actors.pop().startswith("os:")


@pytest.mark.parametrize("argv, message", [
    (("wang",), "nothing to change"),
    (("wang", "--sip-uri", "1001@pbx"), "starts with sip: or sips:"),
    (("wang", "--weight", "0"), "from 1 to 100"),
    (("wang", "--campaigns", "nope"), "no campaign named 'nope'"),
    (("li", "--weight", "3"), "not an agent"),
])
def test_user_set_refusals_exit_2_with_the_reason(
        url: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
        message: str) -> None:
    code, out, err = _run(capsys, url, "user", "set", *argv)
    assert code == 2 and out == ""
    assert err.startswith("waihu user set: ") and message in err


def test_user_list_role_agent_shows_the_agents_with_their_settings(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, url, "user", "list", "--role", "agent", "--json")
    assert code == 0
    assert [(u["username"], u["agent"]) for u in json.loads(out)] == [
        ("wang", {"sip_uri": "sip:1001@10.0.0.5", "campaigns": ["trial"], "weight": 2})]
    code, out, _ = _run(capsys, url, "user", "list", "--role", "agent")
    assert out.split() == ["wang", "agent", "active", "sip:1001@10.0.0.5", "weight", "2",
                           "campaigns", "trial"]
