"""The importer hashes ID digits with the server key, loaded once per import."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot import keys, privacy
from bot.campaigns.definition import load_definition
from bot.campaigns.importer import import_contacts
from bot.campaigns.registry import save_campaign
from bot.store import ContactRepo, Database
from bot.store.models import Contact

REPO = Path(__file__).resolve().parents[3]
HEADER = "手机号,姓名,身份证号"


@pytest.fixture
def marketing(db: Database) -> Database:
    save_campaign(db, load_definition(REPO / "examples" / "campaigns" / "marketing.yml"))
    return db


def test_imported_id_digits_are_keyed_and_the_key_is_read_once(
        marketing: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = keys.load

    def counting_load(name: str, folder: Path | None = None) -> keys.Keyring:
        loads.append(name)
        return real_load(name, folder)

    monkeypatch.setattr(keys, "load", counting_load)
    lines = [HEADER] + [f"1381234{i:04d},客户{i},{1000 + i:04d}" for i in range(10)]
    lines.append("13812340003,又一个,9999")  # a repeat: merged, first digits win
    lines.append("13812340020,无号码,")
    first = tmp_path / "list.csv"
    first.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = import_contacts(marketing, "vas-call-alert", first, batch_size=3)
    assert (summary.imported, summary.merged) == (11, 1)
    assert loads == [keys.ID_HASH]  # one import, one read of the key, however many batches

    # the fill-the-blanks path of a later import hashes with the key too
    second = tmp_path / "more.csv"
    second.write_text(f"{HEADER}\n13812340020,无号码,246X\n", encoding="utf-8")
    assert import_contacts(marketing, "vas-call-alert", second).updated == 1
    assert loads == [keys.ID_HASH, keys.ID_HASH]

    current = real_load(keys.ID_HASH).current
    with marketing.session() as session:
        rows = {c.phone: c for c in session.scalars(select(Contact))}
        for i in range(10):
            contact = rows[f"1381234{i:04d}"]
            assert contact.id_hash_key == current.id
            assert contact.id_last4_hash == privacy.keyed_hash(f"{1000 + i:04d}",
                                                               str(contact.id_salt), current)
        late = rows["13812340020"]
        assert late.id_hash_key == current.id
        assert ContactRepo(session).check_id_last4(late, "246X") is True
        assert ContactRepo(session).check_id_last4(rows["13812340003"], "1003") is True


def test_a_list_without_id_digits_needs_no_key(marketing: Database, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path / "no-keys"))
    path = tmp_path / "list.csv"
    path.write_text("手机号,姓名\n13812340001,甲\n", encoding="utf-8")
    assert import_contacts(marketing, "vas-call-alert", path).imported == 1
    with_id = tmp_path / "ids.csv"
    with_id.write_text(f"{HEADER}\n13812340002,乙,1234\n", encoding="utf-8")
    with pytest.raises(keys.KeyringError, match="missing"):
        import_contacts(marketing, "vas-call-alert", with_id)
