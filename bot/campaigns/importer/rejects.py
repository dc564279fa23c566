"""The rejects file: the rows an import refused, with their row number and reasons, written
beside the list so the user can fix them and import the file again.

ID numbers are masked here -- in the ID columns, and wherever an 18-character ID number
shows inside another cell -- because this file is the one place an import writes the original
cells back out.  The other cells are written as text from outside: a value that starts
like a formula gets a leading quote (:mod:`bot.safecells`), and the file is never written
through a link planted at its name (:mod:`bot.safefiles`).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from bot.campaigns.importer.cells import Row, cell_text
from bot.campaigns.importer.errors import ContactImportError
from bot.safecells import neutralise
from bot.safefiles import NewFile, remove_regular_file


def mask_id(text: str) -> str:
    return "*" * len(text)


_ID_IN_TEXT = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


class RejectsFile:
    """``row, reason, <the original columns>`` in UTF-8 with a BOM (so Excel opens it right),
    ID numbers masked, formula-like text neutralised.  Opened before the first row, so an
    unwritable path (or a link planted there) stops the import before anything is written;
    written under a temporary name and renamed at the end; when no row was rejected, an
    older rejects file is removed, so a rejects file beside a list always belongs to its
    last import."""

    def __init__(self, path: Path, headers: list[str], masked: set[int]) -> None:
        self.path = path
        self.headers = headers
        self.masked = masked
        self.count = 0

    def __enter__(self) -> RejectsFile:
        try:
            self._file = NewFile(self.path)
        except OSError as exc:
            raise ContactImportError(f"cannot write the rejects file: {exc}") from None
        self._stream = io.TextIOWrapper(self._file.stream, encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._stream)
        self._writer.writerow(["row", "reason", *(neutralise(h) for h in self.headers)])
        return self

    def add(self, number: int, reasons: list[str], cells: Row) -> None:
        texts = [cell_text(c) for c in cells]
        texts += [""] * (len(self.headers) - len(texts))
        for i, text in enumerate(texts):
            if i in self.masked:
                texts[i] = mask_id(text)
            elif len(text) >= 18:
                texts[i] = _ID_IN_TEXT.sub(lambda m: mask_id(m[0]), text)
        self._writer.writerow([number, neutralise("; ".join(reasons) or "no phone"),
                               *(neutralise(t) for t in texts)])
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self._stream.flush()
        self._stream.detach()  # the NewFile closes its own stream
        if self.count:
            try:
                self._file.commit()
            except OSError as error:
                raise ContactImportError(f"cannot write the rejects file: {error}") from None
        else:
            self._file.discard()
            remove_regular_file(self.path)
