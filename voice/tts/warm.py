"""Warm the prompt cache for a campaign before it runs: ``waihu prompts warm CAMPAIGN``.

Every fixed text the campaign can say (``voice.tts.prompts``) is synthesised once, in the
campaign's voice (``voice.tts.voices``), into the shared cache folder, so gateways only load
files.  Fixed: the same for every contact on each calling day, the untitled address (机主)
included.  The texts with a contact's own values (its form of address, its own trial end)
are synthesised when the gateway claims the contact (``voice.gateway``), unless
``--contacts`` asks for every stored contact's now (slow with a neural voice on a long
list).  The campaign is a name in the database or a definition file (then contacts, if
asked for, come from the campaign of that name in the database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.campaigns.definition import (
    BotVoice,
    CampaignDefinition,
    CampaignFileError,
    load_definition,
)
from bot.store import Database, default_url
from voice.tts.cache import PromptCache
from voice.tts.espeak import SAMPLE_RATE, Synthesizer
from voice.tts.prompts import contact_slot_values, load_campaign_slot_values, plan_prompts
from voice.tts.voices import DEFAULT, synthesizer, synthesizer_for
from voice.tts.worker import warm_many

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_cache_dir() -> Path:
    """``$WAIHU_TTS_CACHE``, else ``<repo>/var/tts/cache``."""
    return Path(os.environ.get("WAIHU_TTS_CACHE") or REPO_ROOT / "var" / "tts" / "cache")


def default_recorded_dir() -> Path:
    """``$WAIHU_RECORDED_PROMPTS``, else ``<repo>/var/tts/recorded`` (``<response>.wav``)."""
    return Path(os.environ.get("WAIHU_RECORDED_PROMPTS")
                or REPO_ROOT / "var" / "tts" / "recorded")


def _slot_values(db: Database | None, campaign: str | Path, now: datetime | None,
                 days: int, contacts: bool) -> tuple[CampaignDefinition, list[dict[str, Any]],
                                                     str]:
    path = Path(campaign)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        definition = load_definition(path)
        when = now or datetime.now(definition.zone)
        if db is not None and contacts:
            try:
                _, values = load_campaign_slot_values(db, definition.name, when, days)
                return definition, values, f"file {path}, contacts of campaign {definition.name}"
            except LookupError:
                pass
        return definition, contact_slot_values(definition, [], when, days), f"file {path}"
    if db is None:
        raise LookupError(f"{campaign!r} is not a campaign file and no database was given")
    definition, values = load_campaign_slot_values(db, str(campaign), now, days)
    if not contacts:
        when = now or datetime.now(definition.zone)
        values = contact_slot_values(definition, [], when, days)
    return definition, values, f"campaign {campaign}"


def gateway_lines() -> dict[str, str]:
    """The gateway's own fixed lines (not Rasa's responses), by a response name of their
    own: the failure line must play when Rasa and its actions cannot be reached."""
    from voice.session import SessionConfig  # the session owns these texts

    config = SessionConfig()
    return {config.failure_text: "gateway_failure", config.no_agent_text: "gateway_no_agent",
            config.holding_text: "gateway_holding"}


def warm_campaign(
    db: Database | None,
    campaign: str | Path,
    cache: PromptCache,
    *,
    now: datetime | None = None,
    days: int = 2,
    processes: int = 2,
    contacts: bool = False,
    voices: Callable[[BotVoice], Synthesizer] | None = None,
) -> dict[str, Any]:
    """Synthesise every fixed prompt of ``campaign`` (a name in ``db`` or a definition file)
    for calls on ``days`` days from ``now``, in the campaign's voice (``voices`` makes its
    synthesizer, default ``synthesizer_for``, which falls back to espeak-ng where Kokoro is
    not prepared; ``cache`` gives the folder, memory and recorded prompts); with
    ``contacts``, every stored contact's own prompts too.  Returns a JSON-able report.

    Raises ``LookupError`` (no such campaign) or ``CampaignFileError`` (bad definition).
    """
    definition, values, source = _slot_values(db, campaign, now, days, contacts)
    cache = cache.voiced((voices or synthesizer_for)(definition.voice))
    plan = plan_prompts(definition, values)
    for text, response in gateway_lines().items():  # said without Rasa: warmed too
        plan.texts.setdefault(text, response)
    report = warm_many(cache, plan.texts, processes=processes)
    audio_bytes = 0
    for text in plan.texts:
        pcm = cache.lookup(text)
        audio_bytes += len(pcm) if pcm is not None else 0
    by_response: dict[str, int] = {}
    for response in plan.texts.values():
        by_response[response] = by_response.get(response, 0) + 1
    return {
        "campaign": definition.name,
        "source": source,
        "voice": cache.synthesizer.voice_id,
        "contacts": contacts,
        "cache_dir": str(cache.folder),
        "days": days,
        "wordings": len(values),  # distinct sets of contact slot values
        "prompts": len(plan.texts),
        "recorded": sum(1 for text in plan.texts if cache.is_recorded(text)),
        "by_response": by_response,
        "dynamic": plan.dynamic,  # synthesised on the call, in a worker process
        "unused": plan.unused,  # never said in this campaign
        "audio_seconds": round(audio_bytes / 2 / SAMPLE_RATE, 1),
        **report,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waihu prompts warm",
        description="Synthesise every fixed prompt of a campaign into the prompt cache.")
    parser.add_argument("campaign", help="campaign name in the database, or a campaign file")
    parser.add_argument("--database", help="database URL (default: $WAIHU_DATABASE_URL or "
                        "the embedded SQLite file)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="prompt cache folder (default: $WAIHU_TTS_CACHE or var/tts/cache)")
    parser.add_argument("--recorded-dir", type=Path, default=None,
                        help="recorded prompts, <response>.wav (default: "
                        "$WAIHU_RECORDED_PROMPTS or var/tts/recorded)")
    parser.add_argument("--days", type=int, default=2,
                        help="calling days to cover from today (trial end dates move daily)")
    parser.add_argument("--processes", type=int, default=2, help="synthesis processes")
    parser.add_argument("--contacts", action="store_true",
                        help="also every stored contact's own prompts (form of address, own "
                        "trial end); without it the gateway synthesises them at the claim")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``waihu prompts warm CAMPAIGN [...]``: prints the report as JSON; 0 if nothing failed,
    1 if some prompts failed, 2 for an unknown campaign or a bad file."""
    args = build_parser().parse_args(argv)
    recorded = args.recorded_dir or default_recorded_dir()
    # The campaign's voice replaces this one (warm_campaign).
    cache = PromptCache(args.cache_dir or default_cache_dir(), synthesizer(DEFAULT),
                        recorded_dir=recorded if recorded.is_dir() else None)
    db = Database(default_url(args.database))
    try:
        db.upgrade()
        report = warm_campaign(db, args.campaign, cache, days=args.days,
                               processes=args.processes, contacts=args.contacts)
    except (LookupError, CampaignFileError) as exc:
        print(f"waihu prompts warm: {exc}", file=sys.stderr)
        return 2
    finally:
        db.engine.dispose()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
