"""Benchmark `waihu import`: generate a realistic contact list (CSV, UTF-8) and import it into
a fresh SQLite database, or into the PostgreSQL database given with --database.  Prints one
JSON object: rows, seconds, rows/s, peak RSS, the import summary counts.

    .venv/bin/python bench/import.py [--rows 1000000] [--database URL] [--reimport]

The list has what real ones have: ~2% bad rows (400 numbers, short numbers, scientific
notation, missing names, impossible ages, ID typos), ~1% repeated phones (often written
differently: +86, dashes), full 18-character ID numbers on most rows, custom and order fields.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import delete, select  # noqa: E402

from bot.campaigns.definition import load_definition  # noqa: E402
from bot.campaigns.importer import import_contacts  # noqa: E402
from bot.campaigns.registry import save_campaign  # noqa: E402
from bot.store import Database  # noqa: E402
from bot.store.models import Campaign, Contact  # noqa: E402

MARKETING = REPO / "examples" / "campaigns" / "marketing.yml"
HEADER = ["手机号", "姓名", "性别", "年龄", "地区", "身份证号", "当前套餐", "订单号"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅晨欣怡浩宇子涵"
REGIONS = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆",
           "天津", "苏州", "长沙", "郑州", "沈阳", "青岛", "济南", "厦门", "福州", "昆明"]
AREAS = ["110105", "310104", "440106", "440305", "330106", "510107", "420102", "320102",
         "610103", "500103", "120101", "430104", "370102", "350203", "210102"]
PLANS = ["畅享套餐58元", "畅享套餐38元", "流量王套餐", "家庭宽带套餐", "老年关怀套餐", ""]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                   "151", "152", "155", "156", "157", "158", "159", "166", "176", "177",
                   "178", "180", "181", "182", "183", "185", "186", "187", "188", "189",
                   "191", "198", "199"]
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(rng: random.Random, age: int, *, typo: bool = False) -> str:
    """A fake 18-character ID number with a valid (or, with *typo*, wrong) check digit."""
    body = (f"{rng.choice(AREAS)}{2026 - age:04d}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _WEIGHTS, strict=True)) % 11]
    if typo:
        check = "0" if check != "0" else "1"
    return body + check


def spelled(rng: random.Random, phone: str) -> str:
    """The same mobile written the ways lists write it."""
    return rng.choice([phone, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}",
                       f"{phone[:3]}-{phone[3:7]}-{phone[7:]}", f"86{phone}", f"{phone}.0"])


def bad_row(rng: random.Random, row: list[str]) -> list[str]:
    kind = rng.randrange(6)
    if kind == 0:
        row[0] = f"400{rng.randint(1000000, 9999999)}"
    elif kind == 1:
        row[0] = f"1.{rng.randint(10000, 99999)}E+10"
    elif kind == 2:
        row[0] = row[0][:9]
    elif kind == 3:
        row[1] = ""  # name is required by the marketing template
    elif kind == 4:
        row[3] = str(rng.randint(130, 200))
    else:
        row[5] = id_number(rng, int(row[3]), typo=True)
    return row


def generate(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    seen: list[str] = []
    counts = {"bad": 0, "repeats": 0}
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(HEADER)
        for _ in range(rows):
            age = rng.randint(18, 85)
            if seen and rng.random() < 0.01:
                phone = spelled(rng, rng.choice(seen))
                counts["repeats"] += 1
            else:
                phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randint(0, 99_999_999):08d}"
                if len(seen) < 100_000:
                    seen.append(phone)
            row = [
                phone,
                rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
                rng.choice(["男", "女"]),
                str(age),
                rng.choice(REGIONS),
                id_number(rng, age) if rng.random() < 0.9 else "",
                rng.choice(PLANS),
                f"DD{rng.randint(10**11, 10**12 - 1)}",
            ]
            if rng.random() < 0.02:
                row = bad_row(rng, row)
                counts["bad"] += 1
            writer.writerow(row)
    return counts


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file); "
                        "the bench campaign and its contacts are removed afterwards")
    parser.add_argument("--reimport", action="store_true",
                        help="import the same file a second time (everything unchanged)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="waihu-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "contacts.csv"
        started = time.perf_counter()
        generated = generate(csv_path, args.rows)
        generate_s = time.perf_counter() - started

        db = Database(args.database or f"sqlite:///{work / 'bench.db'}")
        db.upgrade()
        defn = load_definition(MARKETING).model_copy(
            update={"name": f"bench-import-{secrets.token_hex(4)}"})
        save_campaign(db, defn)
        rss_before = peak_rss_mb()
        summary = import_contacts(db, defn.name, csv_path)
        result: dict[str, Any] = {
            "database": db.url.get_backend_name(),
            "rows": summary.rows,
            "seconds": summary.seconds,
            "rows_per_s": round(summary.rows / summary.seconds),
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_mb_before_import": rss_before,
            "imported": summary.imported,
            "merged": summary.merged,
            "rejected": summary.rejected,
            "on_dnc": summary.on_dnc,
            "generated": {**generated, "seconds": round(generate_s, 1),
                          "file_mb": round(csv_path.stat().st_size / 1e6, 1)},
        }
        if args.reimport:
            again = import_contacts(db, defn.name, csv_path)
            result["reimport"] = {"seconds": again.seconds, "imported": again.imported,
                                  "updated": again.updated, "unchanged": again.unchanged,
                                  "peak_rss_mb": peak_rss_mb()}
        if args.database:
            with db.session() as session:
                campaign_id = session.scalar(select(Campaign.id).where(
                    Campaign.name == defn.name))
                session.execute(delete(Contact).where(Contact.campaign_id == campaign_id))
                session.execute(delete(Campaign).where(Campaign.id == campaign_id))
        db.dispose()
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
