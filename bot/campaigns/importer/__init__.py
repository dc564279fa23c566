"""Contact list import (``waihu import CAMPAIGN FILE``): a CSV or XLSX list into the contacts
of one campaign.

- Columns are found by their header: the standard ones under their usual Chinese or English
  names (:data:`STANDARD_HEADERS`) plus the campaign template's ``headers``; custom and order
  fields under their ``header`` (or key), typed.  A required column missing from the header
  row stops the import before anything is written.
- A row with a problem (bad phone, missing required value, bad age/date/ID...) goes to the
  rejects file with its row number as the user sees it (the header is row 1) and the reasons;
  the good rows import.  ID numbers are reduced to a salted hash of their last 4 characters
  and never written in clear anywhere, the rejects file included.
- One phone = one contact: repeats within the file, and rows for contacts already in the
  campaign, are merged (values already known win, later non-empty values fill the blanks).
  Importing the same file twice therefore changes nothing the second time, and an import
  that was interrupted can simply be run again.
- Numbers on the do-not-call list are imported and counted (``on_dnc``): the dialer skips
  them, and they become callable again if the entry is ever removed.

Built for lists of millions of rows (a million in ~30 s on SQLite, bench/import.py): rows
stream from the file, good rows are written in batches -- bulk INSERT (COPY on PostgreSQL) of
new contacts, executemany UPDATE of known ones, one commit per batch so that other processes
can write in between -- and besides the current batch only sets of phone numbers stay in
memory.

This package runs the import; each part has a module of its own: :mod:`.reading` (the file,
its encoding), :mod:`.cells` (cell values and their parsers), :mod:`.columns` (which column is
what), :mod:`.rejects` (the rejects file), :mod:`.writer` (the contacts table).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.campaigns.definition import CampaignDefinition, CampaignFileError
from bot.campaigns.importer.cells import id_last4, is_blank_row
from bot.campaigns.importer.columns import STANDARD_HEADERS, ColumnPlan, header_key
from bot.campaigns.importer.errors import ContactImportError
from bot.campaigns.importer.reading import open_table
from bot.campaigns.importer.rejects import RejectsFile
from bot.campaigns.importer.writer import ContactSink, bulk_load_settings
from bot.campaigns.registry import campaign_definition
from bot.store import CampaignRepo, Database

__all__ = [
    "BATCH_SIZE",
    "STANDARD_HEADERS",
    "ContactImportError",
    "ImportSummary",
    "header_key",
    "id_last4",
    "import_contacts",
]

log = logging.getLogger("waihu.import")

BATCH_SIZE = 20_000


@dataclass
class ImportSummary:
    """What an import did.  ``rows`` (blank rows not counted) = ``imported`` + ``updated`` +
    ``unchanged`` + ``merged`` + ``rejected``; ``on_dnc`` counts contacts of the file, new or
    not, whose number is on the do-not-call list."""

    file: str
    campaign: str
    rows: int = 0
    imported: int = 0  # new contacts
    updated: int = 0  # contacts already in the campaign whose blanks the file filled
    unchanged: int = 0  # contacts already in the campaign, nothing new for them in the file
    merged: int = 0  # rows repeating a phone seen earlier in the file, merged into it
    rejected: int = 0
    on_dnc: int = 0
    rejects_file: str | None = None  # only written when rows were rejected
    seconds: float = 0.0
    encoding: str | None = None  # of a CSV file, as detected or given
    ignored_columns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps(summary.as_json())``)."""
        return asdict(self)


def import_contacts(
    db: Database,
    campaign_name: str,
    path: str | Path,
    *,
    rejects_path: str | Path | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Import the contact list at *path* (CSV or XLSX) into the campaign *campaign_name*.

    Rejected rows go to *rejects_path* (default ``<stem>.rejects.csv`` beside the file).
    *encoding* overrides the CSV encoding detection (UTF-8 with or without BOM, else
    GB18030/GBK); *sheet* picks an XLSX sheet other than the first.  Raises
    :class:`ContactImportError` when the file cannot be imported at all.
    """
    started = time.perf_counter()
    path = Path(path)
    campaign_id, defn = _campaign(db, campaign_name)
    if not path.is_file():
        raise ContactImportError(f"no such file: {path}")
    rejects_file = Path(rejects_path) if rejects_path else path.with_name(
        f"{path.stem}.rejects.csv")
    if rejects_file.resolve() == path.resolve():
        raise ContactImportError("the rejects file would overwrite the list itself")
    summary = ImportSummary(file=str(path), campaign=campaign_name)
    with open_table(path, encoding, sheet) as table:
        plan = ColumnPlan.build(defn, table.headers)
        summary.encoding = table.encoding
        summary.ignored_columns = plan.ignored
        with RejectsFile(rejects_file, table.headers, plan.masked) as rejects, \
                db.engine.connect() as connection, bulk_load_settings(connection):
            sink = ContactSink(connection, campaign_id, batch_size)
            for number, cells in table.rows:
                if is_blank_row(cells):
                    continue
                summary.rows += 1
                phone, record, reasons = plan.parse(cells)
                if reasons or phone is None:
                    summary.rejected += 1
                    rejects.add(number, reasons, cells)
                else:
                    sink.add(phone, record)
            sink.flush()
    summary.imported, summary.merged, summary.on_dnc = sink.inserted, sink.merged, sink.on_dnc
    summary.updated = len(sink.changed)
    summary.unchanged = sink.matched - summary.updated
    summary.rejects_file = str(rejects_file) if summary.rejected else None
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info("import.finished campaign=%s rows=%d imported=%d updated=%d merged=%d rejected=%d "
             "on_dnc=%d seconds=%.1f", campaign_name, summary.rows, summary.imported,
             summary.updated, summary.merged, summary.rejected, summary.on_dnc, summary.seconds)
    return summary


def _campaign(db: Database, name: str) -> tuple[int, CampaignDefinition]:
    with db.session() as session:
        campaign = CampaignRepo(session).by_name(name)
        if campaign is None:
            raise ContactImportError(
                f"no campaign named {name!r} (create it first: waihu campaign create FILE.yml)")
        try:
            return campaign.id, campaign_definition(campaign)
        except CampaignFileError as exc:  # stored by an older version of the schema
            raise ContactImportError(" ".join(str(exc).split())) from None

