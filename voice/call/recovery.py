"""Recordings a crashed gateway left: finished and linked to their calls at the next start.

A call's recording is written as the call goes, as `<call_id>.wav.partial` under
recordings_dir/YYYY-MM-DD/ (`voice.call.recorder`), and renamed to `<call_id>.wav` with its
sha256 when the call ends.  A gateway killed mid-call (kill -9, a crash, a power cut)
leaves the partial file: audio up to a second or two before the end, with a header that
already matches what was written.  `recover_recordings` repairs each such file
(`voice.audio.wavstream.finalise_partial`: the header from the file's size), links it to
its call (`bot.callrecord.attach_recording`, whatever became of the call: the dialer
closes the attempt as `failed` once its lease expires) and renames it to its final name.

A partial file that a live gateway is still writing is left alone: its writer holds an
exclusive lock on it, which the kernel drops when the writer's process ends, so several
gateways may share the folder.  Never raises: a recording that cannot be repaired or
linked is logged and kept as it is, and the next start tries again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from bot import callrecord
from bot.store import Database
from voice.audio.wavstream import PARTIAL_SUFFIX, finalise_partial

log = logging.getLogger("waihu.recovery")


@dataclass(frozen=True)
class Recovered:
    call_id: str
    path: Path
    sha256: str
    linked: bool  # False: no such call, or it already had a recording


def recover_recordings_sync(folder: Path, db: Database) -> list[Recovered]:
    """Every partial recording under *folder*/YYYY-MM-DD/ whose writer is gone."""
    recovered: list[Recovered] = []
    for partial in sorted(folder.glob(f"*/*.wav{PARTIAL_SUFFIX}")):
        call_id = partial.name.removesuffix(f".wav{PARTIAL_SUFFIX}")
        linked = False

        def link(path: Path, sha256: str, call_id: str = call_id) -> None:
            nonlocal linked
            with db.session() as session:
                linked = callrecord.attach_recording(session, call_id, str(path), sha256)

        try:
            done = finalise_partial(partial, link)
        except Exception:
            log.exception("recording.recovery_failed call_id=%s path=%s", call_id, partial)
            continue
        if done is None:
            log.info("recording.in_use call_id=%s path=%s: a live gateway writes it",
                     call_id, partial)
            continue
        path, sha256 = done
        log.warning("recording.recovered call_id=%s path=%s sha256=%s linked=%s", call_id,
                    path, sha256[:12], linked)
        recovered.append(Recovered(call_id, path, sha256, linked))
    return recovered


async def recover_recordings(folder: Path, db: Database) -> list[Recovered]:
    """`recover_recordings_sync` off the event loop (it reads and hashes whole files)."""
    if not folder.is_dir():
        return []
    try:
        return await asyncio.to_thread(recover_recordings_sync, folder, db)
    except Exception:  # a gateway starts whatever its leftovers are
        log.exception("recording.recovery_failed folder=%s", folder)
        return []
