"""`waihu chat`: be the customer of a campaign in the terminal, through the real servers.

What is typed here is make-believe: a consent, a do-not-call request or a complaint made in
a chat must not land in the database of real campaigns. So chat writes to a fresh scratch
database (var/chat.db, emptied at each start) unless `--database` or `WAIHU_DATABASE_URL`
says otherwise (`bot.store.db.default_url`, like `demo` and `simulate`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp

from bot.campaigns.definition import load_definition
from bot.campaigns.registry import save_campaign
from bot.channel import BotReply
from bot.services import RasaStack
from bot.store import ContactRepo, Database, default_url
from bot.store.schema import ensure_current
from bot.textcall import TextCall

HELP = """输入客户说的话 (type what the customer says). Commands:
  :1 … :9, :*, :#   key DTMF digits (":1234" keys four digits)
  :silence          the customer stays silent (/silence_timeout)
  :hangup           the customer hangs up
"""


def _show(turn: BotReply) -> None:
    for text in turn.texts:
        print(f"机器人> {text}")
    notes = []
    if turn.listen:
        notes.append(f"listen {turn.listen['expect']}")
    if turn.disclosures:
        notes.append("disclosures " + ",".join(turn.disclosures))
    if turn.transfer:
        notes.append(f"transfer to a human agent ({turn.transfer.get('reason')})")
    if turn.hangup:
        notes.append("hang up")
    if notes:
        print(f"        [{'; '.join(notes)}]")


async def _read_line(prompt: str) -> str | None:
    try:
        return await asyncio.get_running_loop().run_in_executor(None, input, prompt)
    except EOFError:
        return None


def open_database(args: argparse.Namespace) -> Database:
    """The database chat writes to: `--database`, else `WAIHU_DATABASE_URL`, else the
    scratch var/chat.db."""
    db = Database(default_url(args.database, scratch="chat"))
    ensure_current(db)
    return db


def run(args: argparse.Namespace) -> int:
    """`waihu chat`."""
    db = open_database(args)
    print(f"database: {db.url}", file=sys.stderr)
    return asyncio.run(chat(db, args))


async def chat(db: Database, args: argparse.Namespace) -> int:
    defn = load_definition(args.campaign)
    campaign_id = save_campaign(db, defn)
    with db.session() as session:
        contacts = ContactRepo(session)
        contact = contacts.by_phone(campaign_id, args.phone) or contacts.add(
            campaign_id, args.phone, name=args.name, gender=args.gender,
            id_last4=args.id_last4,
            fields={"trial_end": args.trial_end} if args.trial_end else {})
        contact_id = contact.id
    print(f"starting the Rasa server and the action server for {defn.name} (about 30 s)…",
          file=sys.stderr)
    with RasaStack(db.url.render_as_string(hide_password=False)) as stack:
        async with aiohttp.ClientSession() as http:
            client = stack.endpoint.channel(http)
            call_id, call = TextCall.dial(client, db, campaign_id, contact_id)
            assert call is not None
            print(HELP)
            print(f"call {call_id}")
            _show(await call.start())
            while not call.ended:
                line = await _read_line("客户> ")
                if line is None or line.strip() == ":hangup":
                    await call.hang_up()
                    break
                line = line.strip()
                if not line:
                    continue
                if line == ":silence":
                    _show(await call.silence())
                elif line.startswith(":"):
                    _show(await call.key(line[1:]))
                else:
                    _show(await call.say(line))
            result = call.outcome()
    print(f"\noutcome: {result['outcome']}"
          + (f", reason {result['decline_reason']}" if result["decline_reason"] else "")
          + (f", {result['confirmation_result']}" if result["confirmation_result"] else ""))
    print(f"database: {db.url}")
    return 0
