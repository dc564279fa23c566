"""How big a contact list may be: the limits that keep a hostile or broken file (a zip bomb,
a file without line ends, a binary file) from using up the memory or the time of the machine.

Each limit is a setting: ``WAIHU_IMPORT_<NAME>`` in the environment (e.g.
``WAIHU_IMPORT_MAX_ROWS=3000000``), else the default below.  The defaults let a list of two
million rows import (the benchmark is a million, bench/import.py) and refuse what no
spreadsheet program writes.  The ratio limit is Apache POI's (its ``ZipSecureFile``
refuses parts that inflate more than 100 times), which has served Java shops reading
untrusted Excel files for years.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from bot.campaigns.importer.errors import ContactImportError

ENV_PREFIX = "WAIHU_IMPORT_"
MB = 1 << 20


@dataclass(frozen=True)
class ImportLimits:
    max_file_mb: int = 1024  # the list on disk, CSV or XLSX
    max_rows: int = 2_000_000  # data rows (Excel itself stops at 1,048,576)
    max_cell_chars: int = 32_767  # one cell's text: Excel's own limit
    max_columns: int = 1000  # cells in one row (a list has a dozen or two)
    max_line_kb: int = 1024  # CSV: one line of the file (a binary file has none)
    xlsx_max_sheet_mb: int = 2048  # a worksheet's XML, uncompressed (read as a stream)
    # The shared strings (every distinct text of the workbook), uncompressed: openpyxl holds
    # them all in memory, about 7 bytes of memory per byte of XML (measured: 57 MB, 2 million
    # strings, 400 MB), so this also bounds the number of strings.
    xlsx_max_shared_strings_mb: int = 256
    xlsx_max_part_mb: int = 64  # any other XML part, uncompressed (held in memory)
    xlsx_max_ratio: int = 100  # uncompressed / compressed size of a part over 1 MB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ImportLimits:
        """The limits with ``WAIHU_IMPORT_<NAME>`` overrides from *environ* (os.environ)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            text = environ.get(name)
            if text is None:
                continue
            try:
                values[f.name] = int(text)
            except ValueError:
                raise ContactImportError(f"{name}={text!r} is not a whole number") from None
            if values[f.name] <= 0:
                raise ContactImportError(f"{name} must be positive, not {text}")
        return cls(**values)
