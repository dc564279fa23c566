"""Column mapping: which columns of a list's header row hold which contact value.

:class:`ColumnPlan` is built once from the header row and the campaign definition -- the
standard columns under their usual Chinese or English names (:data:`STANDARD_HEADERS`) plus
the template's own ``headers``, custom and order fields under their ``header`` -- and refuses
the file when a required column is missing.  It then turns each row into a record, using the
parsers of :mod:`.cells`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.campaigns.definition import CampaignDefinition
from bot.campaigns.importer.cells import (
    FIELD_TYPE_PARSERS,
    STANDARD_COLUMN_PARSERS,
    Cell,
    Row,
)
from bot.campaigns.importer.errors import ContactImportError

STANDARD_HEADERS: dict[str, tuple[str, ...]] = {
    # In order of preference: when a list has several of them (手机号 and 电话), the first
    # non-empty one in this order is the contact's value.
    "phone": ("手机号", "手机号码", "手机", "移动电话", "电话", "电话号码", "联系电话",
              "联系方式", "号码", "phone", "mobile", "mobile phone", "phone number", "tel",
              "telephone", "cellphone"),
    "name": ("姓名", "客户姓名", "客户名", "名字", "联系人", "name", "customer name",
             "full name"),
    "gender": ("性别", "gender", "sex"),
    "age": ("年龄", "age"),
    "region": ("地区", "省份", "城市", "区域", "所在地区", "所在地", "region", "province",
               "city", "area"),
    # A full 18-character ID number or only its last 4, in either kind of column: the value
    # tells which.
    "id_last4": ("身份证号", "身份证号码", "身份证", "证件号", "证件号码", "id number",
                 "id card", "id card number", "身份证后四位", "身份证后4位", "证件号后四位",
                 "id last4", "last4"),
}


# Where a standard value goes in a record: [name, gender, age, region, id_last4, fields].
_SLOTS = {"name": 0, "gender": 1, "age": 2, "region": 3, "id_last4": 4}
_PHONE, _FIELD = -1, -2


_HEADER_NOISE = re.compile(r"[\s*:_\-]")
_HEADER_NOTE = re.compile(r"\(.*\)$")


def header_key(header: str) -> str:
    """Headers compare as: NFKC, lower case, no spaces, ``*``, ``:``, ``_``, ``-`` and no
    trailing note in brackets (``"手机号码（必填）"`` == ``"手机号码"``)."""
    text = _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", header).lower())
    return _HEADER_NOTE.sub("", text) or text


@dataclass(frozen=True)
class _Target:
    key: str  # standard column name or custom field key
    columns: tuple[int, ...]  # candidate columns, first non-empty wins
    convert: Callable[[Cell], Any]
    required: bool
    slot: int  # _PHONE, _FIELD or an index of _SLOTS


@dataclass
class ColumnPlan:
    """Built once from the header row (:meth:`build`), then applied to every row
    (:meth:`parse`)."""

    headers: list[str]
    targets: list[_Target]
    masked: set[int]  # columns holding ID numbers: never written in clear
    ignored: list[str]

    @classmethod
    def build(cls, defn: CampaignDefinition, headers: list[str]) -> ColumnPlan:
        keys = [header_key(h) for h in headers]
        columns: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            if key:
                columns.setdefault(key, []).append(index)
        used: set[int] = set()
        targets: list[_Target] = []
        missing: list[str] = []

        template = defn.contacts
        id_keys = {header_key(a) for a in
                   (*STANDARD_HEADERS["id_last4"], *template.headers.get("id_last4", []))}
        # Custom and order fields first: the campaign named their headers itself.
        for spec in defn.list_fields:
            found = next((c for h in spec.headers for c in columns.get(header_key(h), [])
                          if c not in used), None)
            if found is None:
                if spec.required:
                    missing.append(f"{spec.header or spec.key}")
                continue
            if keys[found] in id_keys:
                raise ContactImportError(
                    f"field {spec.key!r} would keep the ID numbers of column {headers[found]!r} "
                    "in clear: ID digits go only to the standard id_last4 column (hashed)")
            used.add(found)
            targets.append(_Target(spec.key, (found,), FIELD_TYPE_PARSERS[spec.type],
                                   spec.required, _FIELD))

        for name in ("phone", *template.columns):
            aliases = [*template.headers.get(name, []), *STANDARD_HEADERS[name]]
            found_all: list[int] = []
            for alias in aliases:
                for c in columns.get(header_key(alias), []):
                    if c not in used and c not in found_all:
                        found_all.append(c)
            required = name == "phone" or name in template.required
            if not found_all:
                if required:
                    missing.append(f"{name} ({'/'.join(aliases[:4])}...)")
                continue
            used.update(found_all)
            targets.append(_Target(name, tuple(found_all), STANDARD_COLUMN_PARSERS[name], required,
                                   _PHONE if name == "phone" else _SLOTS[name]))

        if missing:
            shown = ", ".join(h for h in headers if h.strip()) or "(none)"
            raise ContactImportError(
                f"required column(s) missing: {'; '.join(missing)}. The header row has: "
                f"{shown}")
        masked = {i for i, key in enumerate(keys) if key in id_keys}
        masked.update(c for t in targets if t.key == "id_last4" and t.slot != _FIELD
                      for c in t.columns)
        ignored = [headers[i] for i, key in enumerate(keys) if key and i not in used]
        return cls(headers, targets, masked, ignored)

    def parse(self, cells: Row) -> tuple[str | None, list[Any], list[str]]:
        """(phone, record, reasons): a record is [name, gender, age, region, id_last4, fields]
        with None for blanks; the row is rejected when there are reasons."""
        count = len(cells)
        record: list[Any] = [None, None, None, None, None, {}]
        reasons: list[str] = []
        phone: str | None = None
        for target in self.targets:
            raw: Cell = None
            column = target.columns[0]
            for c in target.columns:
                if c < count:
                    cell = cells[c]  # inlined is_blank(): this loop runs for every cell
                    if cell is not None and (type(cell) is not str or cell and not cell.isspace()):
                        raw, column = cell, c
                        break
            if raw is None:
                if target.required:
                    reasons.append(f"{self.headers[column]}: required, empty")
                continue
            try:
                value = target.convert(raw)
            except ValueError as exc:
                reasons.append(f"{self.headers[column]}: {exc}")
                continue
            if value is None:
                if target.required:
                    reasons.append(f"{self.headers[column]}: required, empty")
            elif target.slot == _PHONE:
                phone = value
            elif target.slot == _FIELD:
                record[5][target.key] = value
            else:
                record[target.slot] = value
        return phone, record, reasons


