"""`waihu import`: contact lists (CSV in UTF-8/BOM/GBK, XLSX) into a campaign, on SQLite and
PostgreSQL: header matching, typed fields, rejects file, merging, DNC, ID privacy, CLI."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.campaigns.definition import load_definition, parse_definition
from bot.campaigns.importer import (
    ContactImportError,
    ImportSummary,
    header_key,
    id_last4,
    import_contacts,
)
from bot.campaigns.registry import save_campaign
from bot.cli import main
from bot.store import ContactRepo, Database, DncRepo
from bot.store.models import Campaign, Contact

REPO = Path(__file__).resolve().parents[3]
MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"
NOTIFICATION = REPO / "examples" / "campaigns" / "notification.yml"
LISTS = REPO / "examples" / "lists"
HEADER = "手机号,姓名,性别,年龄,地区,身份证号,当前套餐,订单号"


def make_id(region: str = "110105", born: str = "19850312", seq: int = 123) -> str:
    """A fake 18-character ID number with a valid check digit."""
    body = f"{region}{born}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


ID_A = make_id("440106", "19900705", 456)  # ends in X: can never hide inside a hex hash
ID_B = make_id("310104", "19781120", 789)
assert ID_A.endswith("456X")


@pytest.fixture
def marketing(db: Database) -> Database:
    save_campaign(db, load_definition(MARKETING))
    return db


TYPED = {
    "name": "typed",
    "type": "notification",
    "company": "示例",
    "hotline": "10010",
    "script": {"notice_text": "您的账单已出。"},
    "contacts": {
        "columns": ["name", "id_last4"],
        "headers": {"phone": ["家长手机"], "name": ["学生家长"]},
        "custom": [{"key": "visits", "header": "到访次数", "type": "int"}],
    },
    "order": [
        {"key": "due", "header": "缴费日期", "type": "date", "required": True},
        {"key": "amount", "header": "金额", "type": "money"},
        {"key": "note", "type": "text"},
    ],
}


@pytest.fixture
def typed(db: Database) -> Database:
    save_campaign(db, parse_definition(TYPED))
    return db


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def contacts(db: Database, campaign: str = "vas-call-alert") -> dict[str, Contact]:
    with db.session() as session:
        rows = session.scalars(select(Contact).join(Campaign, Campaign.id == Contact.campaign_id)
                               .where(Campaign.name == campaign).order_by(Contact.id)).all()
        return {c.phone: c for c in rows}


def rejects(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, so Excel opens it"
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def balanced(summary: ImportSummary) -> bool:
    return summary.rows == (summary.imported + summary.updated + summary.unchanged
                            + summary.merged + summary.rejected)


# --- CSV, encodings ----------------------------------------------------------------------

LIST = f"""{HEADER}
13812345678,张伟,男,41,北京,{ID_A},畅享套餐58元,DD001
+86 139-0000-1111,李娜,F,36岁,广州,{ID_B},,DD002
020-88886666,陈静,女士,,成都,,家庭宽带套餐,
"""


@pytest.mark.parametrize(("encoding", "reported"),
                         [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-bom"), ("gbk", "gb18030")])
def test_csv_in_every_encoding_imports_the_same(marketing: Database, tmp_path: Path,
                                                encoding: str, reported: str) -> None:
    path = write(tmp_path / "list.csv", LIST, encoding)
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.rows, summary.imported, summary.rejected) == (3, 3, 0)
    assert summary.encoding == reported
    assert summary.rejects_file is None and not (tmp_path / "list.rejects.csv").exists()
    got = contacts(marketing)
    assert set(got) == {"13812345678", "13900001111", "02088886666"}
    zhang, li, chen = got["13812345678"], got["13900001111"], got["02088886666"]
    assert (zhang.name, zhang.gender, zhang.age, zhang.region) == ("张伟", "male", 41, "北京")
    assert zhang.fields == {"plan": "畅享套餐58元", "order_no": "DD001"}
    assert (li.gender, li.age, li.fields) == ("female", 36, {"order_no": "DD002"})
    assert (chen.gender, chen.age, chen.id_last4_hash) == ("female", None, None)
    assert (zhang.status, zhang.attempts, zhang.priority) == ("pending", 0, 0)
    assert zhang.created_at.tzinfo is not None


def test_encoding_override(marketing: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", LIST, "gbk")
    summary = import_contacts(marketing, "vas-call-alert", path, encoding="gbk")
    assert (summary.imported, summary.encoding) == (3, "gbk")
    with pytest.raises(ContactImportError, match=r"is not utf-8 text \(byte \d+\)"):
        import_contacts(marketing, "vas-call-alert", path, encoding="utf-8")
    with pytest.raises(ContactImportError, match="unknown encoding"):
        import_contacts(marketing, "vas-call-alert", path, encoding="klingon")


def test_tab_separated_utf16_from_excel_unicode_text(marketing: Database,
                                                     tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", LIST.replace(",", "\t"), "utf-16")
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.imported, summary.encoding) == (3, "utf-16")


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_typed_cells(marketing: Database, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "名单"
    sheet.append(["手机号", "姓名", "性别", "年龄", "地区", "身份证号", "当前套餐", "订单号"])
    sheet.append([13812345678, "张伟", "男", 41, "北京", ID_A, "畅享套餐58元", 20261101001])
    sheet.append([13900001111.0, "李娜", "女", 36.0, "广州", float(ID_B), None, None])
    sheet.append([None, None, None, None, None, None, None, None])  # blank: skipped
    sheet.append(["4008001234", "杨磊", "男", 25, "武汉", None, None, None])
    other = book.create_sheet("补充")
    other.append(["电话", "客户姓名"])
    other.append(["15800006666", "孙丽"])
    path = tmp_path / "list.xlsx"
    book.save(path)

    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.rows, summary.imported, summary.rejected) == (3, 1, 2)
    assert summary.encoding is None
    zhang = contacts(marketing)["13812345678"]
    assert zhang.age == 41 and zhang.fields == {"plan": "畅享套餐58元",
                                                "order_no": "20261101001"}
    reasons = {r["row"]: r["reason"] for r in rejects(tmp_path / "list.rejects.csv")}
    assert "Excel has already dropped digits" in reasons["3"]  # ID stored as a number
    assert "400/800" in reasons["5"]  # row 4 is blank, numbers stay as in the sheet

    second = import_contacts(marketing, "vas-call-alert", path, sheet="补充")
    assert second.imported == 1 and "15800006666" in contacts(marketing)
    with pytest.raises(ContactImportError, match="no sheet named 'x'.*名单, 补充"):
        import_contacts(marketing, "vas-call-alert", path, sheet="x")
    with pytest.raises(ContactImportError, match="--encoding applies to CSV"):
        import_contacts(marketing, "vas-call-alert", path, encoding="gbk")


def test_xlsx_dates_and_money(typed: Database, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["家长手机", "学生家长", "缴费日期", "金额", "到访次数"])
    sheet.append(["13812345678", "王女士", datetime(2026, 12, 5), 58.5, 3.0])
    sheet.append(["13900001111", "李先生", "2026/12/6", 120, "4"])
    sheet.append(["13700002222", "赵女士", 46000, 1, 1])  # a bare number is not a date
    path = tmp_path / "bills.xlsx"
    book.save(path)
    summary = import_contacts(typed, "typed", path)
    assert (summary.imported, summary.rejected) == (2, 1)
    got = contacts(typed, "typed")
    assert got["13812345678"].fields == {"due": "2026-12-05", "amount": "58.50", "visits": 3}
    assert got["13900001111"].fields == {"due": "2026-12-06", "amount": "120.00", "visits": 4}
    assert "缴费日期: '46000' is not a date" in rejects(tmp_path / "bills.rejects.csv")[0][
        "reason"]


def test_old_xls_refused(marketing: Database, tmp_path: Path) -> None:
    path = tmp_path / "list.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    with pytest.raises(ContactImportError, match=r"old Excel \.xls"):
        import_contacts(marketing, "vas-call-alert", path)


# --- typed fields, headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "amount", "visits", "fields", "reason"),
    [
        ("2026-12-05", "58", "3", {"due": "2026-12-05", "amount": "58.00", "visits": 3}, None),
        ("2026/12/5", "¥1,234.5", "1,200", {"due": "2026-12-05", "amount": "1234.50",
                                            "visits": 1200}, None),
        ("2026年12月5日", "5元", "", {"due": "2026-12-05", "amount": "5.00"}, None),
        ("20261205", "￥0.50", "0", {"due": "2026-12-05", "amount": "0.50", "visits": 0}, None),
        ("2026/12/5 0:00", "", "2.0", {"due": "2026-12-05", "visits": 2}, None),
        ("", "5", "1", None, "缴费日期: required, empty"),
        ("2026-13-01", "5", "1", None, "缴费日期: '2026-13-01': no such date"),
        ("12/05/2026", "5", "1", None, "缴费日期: '12/05/2026' is not a date (YYYY-MM-DD)"),
        ("2026-12-05", "5.555", "1", None, "金额: '5.555' is not an amount in yuan"),
        ("2026-12-05", "五元", "1", None, "金额: '五' is not an amount"),
        ("2026-12-05", "5", "1.5", None, "到访次数: '1.5' is not a whole number"),
    ],
)
def test_typed_fields(typed: Database, tmp_path: Path, due: str, amount: str, visits: str,
                      fields: dict[str, Any] | None, reason: str | None) -> None:
    path = write(tmp_path / "bills.csv",
                 f"家长手机,学生家长,缴费日期,金额,到访次数\n13812345678,王女士,{due},\"{amount}\","
                 f"\"{visits}\"\n")
    summary = import_contacts(typed, "typed", path)
    if fields is not None:
        assert summary.imported == 1
        assert contacts(typed, "typed")["13812345678"].fields == fields
    else:
        assert summary.rejected == 1
        assert reason is not None and reason in rejects(tmp_path / "bills.rejects.csv")[0][
            "reason"]


def test_header_variants_and_ignored_columns(marketing: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv",
                 "序号, 手机号码（必填）,*客户姓名,Gender,AGE,省份,备注,Current Plan\n"
                 "1,13812345678,张伟,M,41,北京,老客户,x\n")
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert summary.imported == 1
    assert summary.ignored_columns == ["序号", "备注", "Current Plan"]
    zhang = contacts(marketing)["13812345678"]
    assert (zhang.name, zhang.gender, zhang.age, zhang.region) == ("张伟", "male", 41, "北京")
    assert header_key(" 手机号码（必填）") == "手机号码" == header_key("手机号码:")


def test_first_non_empty_phone_column_in_order_of_preference(marketing: Database,
                                                             tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv",
                 "联系电话,姓名,手机\n"
                 "020-88886666,张伟,13812345678\n"
                 "010-66668888,李娜,\n")
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert summary.imported == 2
    assert set(contacts(marketing)) == {"13812345678", "01066668888"}


def test_template_header_aliases(typed: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "家长手机,学生家长,缴费日期,note\n"
                                        "13812345678,王女士,2026-12-05,  二年级  \n")
    assert import_contacts(typed, "typed", path).imported == 1
    contact = contacts(typed, "typed")["13812345678"]
    assert contact.name == "王女士" and contact.fields == {"due": "2026-12-05", "note": "二年级"}


def test_missing_required_header_imports_nothing(marketing: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "电话号码,性别\n13812345678,男\n4008001234,男\n")
    with pytest.raises(ContactImportError,
                       match=r"required column\(s\) missing: name \(姓名/客户姓名/客户名/名字"
                             r"\.\.\.\)\. The header row has: 电话号码, 性别"):
        import_contacts(marketing, "vas-call-alert", path)
    assert contacts(marketing) == {}
    assert not (tmp_path / "list.rejects.csv").exists()
    no_phone = write(tmp_path / "nophone.csv", "姓名\n张伟\n")
    with pytest.raises(ContactImportError, match=r"missing: phone \(手机号/"):
        import_contacts(marketing, "vas-call-alert", no_phone)


def test_required_order_field_header(typed: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "家长手机,学生家长\n13812345678,王女士\n")
    with pytest.raises(ContactImportError, match=r"missing: 缴费日期\."):
        import_contacts(typed, "typed", path)


def test_file_level_errors(marketing: Database, tmp_path: Path) -> None:
    with pytest.raises(ContactImportError, match="no campaign named 'nope'"):
        import_contacts(marketing, "nope", tmp_path / "x.csv")
    with pytest.raises(ContactImportError, match="no such file"):
        import_contacts(marketing, "vas-call-alert", tmp_path / "x.csv")
    with pytest.raises(ContactImportError, match="is empty: no header row"):
        import_contacts(marketing, "vas-call-alert", write(tmp_path / "e.csv", ""))
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"phone\n\x80\n")  # neither UTF-8 nor GB18030
    with pytest.raises(ContactImportError, match="neither UTF-8 nor GBK"):
        import_contacts(marketing, "vas-call-alert", binary)
    good = write(tmp_path / "g.csv", "手机号,姓名\n13812345678,张伟\n")
    with pytest.raises(ContactImportError, match="--sheet applies to XLSX"):
        import_contacts(marketing, "vas-call-alert", good, sheet="x")
    with pytest.raises(ContactImportError, match="would overwrite the list"):
        import_contacts(marketing, "vas-call-alert", good, rejects_path=good)


def test_custom_field_may_not_keep_id_numbers_in_clear(db: Database, tmp_path: Path) -> None:
    spec = dict(TYPED, name="leaky", order=[{"key": "idno", "header": "身份证号"}])
    save_campaign(db, parse_definition(spec))
    path = write(tmp_path / "list.csv", f"家长手机,身份证号\n13812345678,{ID_A}\n")
    with pytest.raises(ContactImportError, match="would keep the ID numbers .* in clear"):
        import_contacts(db, "leaky", path)


# --- rejects ---------------------------------------------------------------------------------


def test_rejects_file_rows_reasons_and_masked_ids(marketing: Database, tmp_path: Path) -> None:
    bad_check = ID_B[:-1] + ("0" if ID_B[-1] != "0" else "1")
    path = write(tmp_path / "list.csv", f"""{HEADER},备注
13812345678,张伟,男,41,北京,{ID_A},,,
4008001234,杨磊,男,25,武汉,{ID_A},,,老客户

13700003333,,男,53,南京,{ID_B},,,
13600004444,赵敏,女,150,济南,{bad_check},,,
1.38E+10,周杰,男,x,西安,,,,
13500005555,吴强,不明,30,天津,123,,,身份证{ID_B}
""")
    out = tmp_path / "out" / "bad.csv"
    out.parent.mkdir()
    summary = import_contacts(marketing, "vas-call-alert", path, rejects_path=out)
    assert (summary.rows, summary.imported, summary.rejected) == (6, 1, 5)
    assert summary.rejects_file == str(out)
    rows = rejects(out)
    assert list(rows[0]) == ["row", "reason", *HEADER.split(","), "备注"]
    assert [(r["row"], r["reason"]) for r in rows] == [
        ("3", "手机号: 400/800 service number, not a customer number"),
        ("5", "姓名: required, empty"),
        ("6", "年龄: 150 is outside 0-120; 身份证号: ID number check digit does not match "
              "(a typo?)"),
        ("7", "手机号: scientific notation: Excel has already dropped digits; format the "
              "column as text and export again; 年龄: 'x' is not a whole number of years"),
        ("8", "性别: '不明' is not 男/女 (M/F); 身份证号: 3 digits where 4 are needed (Excel "
              "drops leading zeros of numbers: format the column as text)"),
    ]
    assert rows[0]["身份证号"] == "*" * 18 and rows[0]["备注"] == "老客户"
    assert rows[4]["身份证号"] == "***" and rows[4]["备注"] == "身份证" + "*" * 18
    assert rows[0]["手机号"] == "4008001234"  # the user needs it to fix the row
    text = out.read_text(encoding="utf-8-sig")
    for secret in (ID_A, ID_B, bad_check, "456X"):
        assert secret not in text


def test_rejects_file_always_belongs_to_the_last_import(marketing: Database,
                                                        tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", LIST + "4008001234,杨磊,男,25,武汉,,,\n")
    assert import_contacts(marketing, "vas-call-alert", path).rejected == 1
    assert len(rejects(tmp_path / "list.rejects.csv")) == 1
    write(path, LIST)  # the bad row fixed (dropped)
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.rejected, summary.rejects_file) == (0, None)
    assert not (tmp_path / "list.rejects.csv").exists()


def test_unwritable_rejects_file_stops_before_anything_is_written(marketing: Database,
                                                                  tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", LIST)
    with pytest.raises(ContactImportError, match="cannot write the rejects file"):
        import_contacts(marketing, "vas-call-alert", path,
                        rejects_path=tmp_path / "no" / "such" / "folder.csv")
    assert contacts(marketing) == {}


def test_unreadable_csv_row_says_what_was_imported(marketing: Database, tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    path = write(tmp_path / "list.csv", LIST + f"13700002222,{huge},,,,,,\n")
    with pytest.raises(ContactImportError, match="row 5: unreadable CSV .* the rows before it "
                                                 "are imported"):
        import_contacts(marketing, "vas-call-alert", path, batch_size=2)
    assert "13812345678" in contacts(marketing)  # a full batch was committed


def test_id_last4_column_and_values() -> None:
    assert id_last4(ID_A) == "456X"
    assert id_last4(ID_A.lower()) == "456X"
    assert id_last4("１２３ｘ") == "123X"
    assert id_last4(" 0123 ") == "0123"
    for value, reason in [(123, "3 digits where 4"), ("12X4", "3 digits then a digit or X"),
                          ("110105850312123", "15-digit first-generation"),
                          (ID_A[:6] + "18000101" + ID_A[14:], "check digit"),
                          ("1.10105198503121E+17", "dropped digits"),
                          ("无", "not an ID number")]:
        with pytest.raises(ValueError, match=reason):
            id_last4(value)
    future = make_id("110105", "20991231", 1)
    with pytest.raises(ValueError, match="no valid birth date"):
        id_last4(future)
    with pytest.raises(ValueError, match="no valid birth date"):
        id_last4(make_id("110105", "19900231", 1))


# --- merging, idempotence, DNC ---------------------------------------------------------------


def test_duplicates_merge_first_values_win_later_fill_blanks(marketing: Database,
                                                             tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", f"""{HEADER}
13812345678,张伟,,,北京,,畅享套餐58元,
138-1234-5678,张三,男,41,上海,{ID_A},流量王套餐,DD001
+8613812345678,张先生,,,,{ID_B},,DD999
13900001111,李娜,女,36,广州,,,
""")
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.rows, summary.imported, summary.merged, summary.rejected) == (4, 2, 2, 0)
    assert balanced(summary)
    zhang = contacts(marketing)["13812345678"]
    assert (zhang.name, zhang.gender, zhang.age, zhang.region) == ("张伟", "male", 41, "北京")
    assert zhang.fields == {"plan": "畅享套餐58元", "order_no": "DD001"}
    with marketing.session() as session:
        repo = ContactRepo(session)
        contact = session.get(Contact, zhang.id)
        assert contact is not None
        assert repo.check_id_last4(contact, "456x") is True
        assert repo.check_id_last4(contact, ID_B[-4:]) is False


def test_reimport_changes_nothing_then_fills_blanks(marketing: Database,
                                                    tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", LIST)
    first = import_contacts(marketing, "vas-call-alert", path)
    before = {p: (c.id, c.name, c.id_last4_hash, c.fields) for p, c in
              contacts(marketing).items()}
    again = import_contacts(marketing, "vas-call-alert", path)
    assert (again.imported, again.updated, again.unchanged, again.merged) == (0, 0, 3, 0)
    assert balanced(first) and balanced(again)
    assert {p: (c.id, c.name, c.id_last4_hash, c.fields) for p, c in
            contacts(marketing).items()} == before

    more = write(tmp_path / "more.csv", f"""{HEADER}
02088886666,别人,男,58,,{ID_B},流量王套餐,DD003
13812345678,张三,女,,,,,DD999
15800006666,孙丽,女,66,天津,,,
""")
    third = import_contacts(marketing, "vas-call-alert", more)
    assert (third.imported, third.updated, third.unchanged) == (1, 1, 1)
    got = contacts(marketing)
    chen, zhang = got["02088886666"], got["13812345678"]
    assert (chen.name, chen.gender, chen.age) == ("陈静", "female", 58)  # blanks filled only
    assert chen.fields == {"plan": "家庭宽带套餐", "order_no": "DD003"}
    assert (zhang.name, zhang.gender, zhang.fields["order_no"]) == ("张伟", "male", "DD001")
    with marketing.session() as session:
        contact = session.get(Contact, chen.id)
        assert contact is not None
        assert ContactRepo(session).check_id_last4(contact, ID_B[-4:]) is True


def test_batches_merge_repeats_across_batch_boundaries(marketing: Database,
                                                       tmp_path: Path) -> None:
    lines = [HEADER]
    for i in range(10):
        lines.append(f"1381234{i:04d},客户{i},,,,,,")
    lines.append(f"13812340001,别人,女,30,上海,{ID_A},套餐,DD1")  # repeats an inserted row
    lines.append("13812340001,又一个,男,31,,,,DD2")
    lines.append("13812340009,某人,女,,,,,")
    path = write(tmp_path / "list.csv", "\n".join(lines) + "\n")
    summary = import_contacts(marketing, "vas-call-alert", path, batch_size=3)
    assert (summary.rows, summary.imported, summary.merged) == (13, 10, 3)
    assert balanced(summary)
    one = contacts(marketing)["13812340001"]
    assert (one.name, one.gender, one.age, one.region) == ("客户1", "female", 30, "上海")
    assert one.fields == {"plan": "套餐", "order_no": "DD1"}
    assert contacts(marketing)["13812340009"].gender == "female"
    again = import_contacts(marketing, "vas-call-alert", path, batch_size=3)
    assert (again.imported, again.updated, again.unchanged, again.merged) == (0, 0, 10, 3)


def test_dnc_numbers_are_imported_and_counted(marketing: Database, tmp_path: Path) -> None:
    with marketing.session() as session:
        dnc = DncRepo(session)
        dnc.add("13812345678", "do_not_call", "别再打了", "customer", "bot")
        dnc.add("13812345678", "blacklist", "投诉", "complaint", "qa")
        dnc.add("13900001111", "do_not_call", "old", "customer", "bot")
        dnc.remove("13900001111", "supervisor", "customer asked to be called again")
    path = write(tmp_path / "list.csv", LIST + "138 1234 5678,张伟,,,,,,\n")
    summary = import_contacts(marketing, "vas-call-alert", path)
    assert (summary.imported, summary.on_dnc, summary.merged) == (3, 1, 1)
    assert contacts(marketing)["13812345678"].status == "pending"  # the dialer skips it
    assert import_contacts(marketing, "vas-call-alert", path).on_dnc == 1


def test_no_clear_id_anywhere_in_the_database(marketing: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", LIST)
    import_contacts(marketing, "vas-call-alert", path)
    with marketing.engine.connect() as connection:
        rows = connection.execute(Contact.__table__.select()).all()
    dumped = repr(rows)
    for secret in (ID_A, ID_B, ID_A[-4:], ID_A[:17]):
        assert secret not in dumped
    if marketing.is_sqlite:  # the file itself, write-ahead log included
        database = Path(str(marketing.url.database))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert ID_A.encode() not in raw and b"456X" not in raw
        assert ID_B.encode() not in raw


# --- the sample lists and the CLI ---------------------------------------------------------


def test_sample_lists(db: Database, tmp_path: Path) -> None:
    save_campaign(db, load_definition(MARKETING))
    save_campaign(db, load_definition(NOTIFICATION))
    for name in ("marketing.csv", "notification_gbk.csv"):
        shutil.copy(LISTS / name, tmp_path / name)
    market = import_contacts(db, "vas-call-alert", tmp_path / "marketing.csv")
    assert (market.rows, market.imported, market.merged, market.rejected) == (22, 13, 3, 6)
    assert [r["row"] for r in rejects(tmp_path / "marketing.rejects.csv")] == [
        "7", "8", "9", "10", "11", "20"]
    notice = import_contacts(db, "class-moved", tmp_path / "notification_gbk.csv")
    assert (notice.encoding, notice.imported, notice.merged, notice.rejected) == (
        "gb18030", 5, 1, 1)
    assert notice.ignored_columns == ["班级"]


def test_cli_import_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["--database", url, "campaign", "create", str(MARKETING)]) == 0
    capsys.readouterr()
    path = write(tmp_path / "list.csv", LIST + "4008001234,杨磊,男,25,武汉,,,\n")
    assert main(["--database", url, "import", "vas-call-alert", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {k: summary[k] for k in ("campaign", "rows", "imported", "rejected")} == {
        "campaign": "vas-call-alert", "rows": 4, "imported": 3, "rejected": 1}
    assert summary["rejects_file"] == str(tmp_path / "list.rejects.csv")
    out = tmp_path / "r.csv"
    assert main(["--database", url, "import", "vas-call-alert", str(path),
                 "--rejects", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 3 and out.exists()


def test_cli_import_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    main(["--database", url, "campaign", "create", str(MARKETING)])
    capsys.readouterr()
    path = write(tmp_path / "list.csv", "电话\n13812345678\n")
    assert main(["--database", url, "import", "vas-call-alert", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("waihu import: required column(s) missing: name")
    assert len(captured.err.strip().splitlines()) == 1
    assert main(["--database", url, "import", "nope", str(path)]) == 2
    assert "no campaign named 'nope'" in capsys.readouterr().err
