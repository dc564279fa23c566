"""`waihu audit anchor | verify | public-key` and the ledger keys behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from bot import keys
from bot.cli import main
from bot.store import Call, ConsentLedger, Database
from bot.store.ledger_signer import LedgerSigner
from tests.conftest import seed_call


def consent(db: Database, call: Call) -> None:
    with db.session() as session:
        ConsentLedger(session).append(call.id, call.contact_id, call.campaign_id, "p",
                                      "h" * 64, ["price"], "我同意", "text", None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_anchor_then_verify_then_a_tampered_ledger(sqlite_db: Database, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_db.url.render_as_string(hide_password=False)
    anchors = tmp_path / "audit" / "anchors.jsonl"
    for _ in range(2):
        consent(sqlite_db, seed_call(sqlite_db, phone=f"1380000000{_}"))
    code, out, _ = run(capsys, "audit", "anchor", "--to", str(anchors), "--database", url)
    assert code == 0 and "anchored 2 entries" in out
    consent(sqlite_db, seed_call(sqlite_db, phone="13800000009"))
    assert run(capsys, "--database", url, "audit", "anchor", "--to", str(anchors))[0] == 0
    lines = anchors.read_text().splitlines()
    assert [json.loads(line)["count"] for line in lines] == [2, 3]  # appended, not rewritten
    code, out, _ = run(capsys, "audit", "verify", "--anchor", str(anchors), "--database", url,
                       "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["anchor"]["count"] == 3
    with sqlite_db.session() as session:  # as the file's owner could
        session.execute(text("DROP TRIGGER consents_no_delete"))
        session.execute(text("DELETE FROM consents WHERE id = (SELECT max(id) FROM consents)"))
    code, out, _ = run(capsys, "audit", "verify", "--anchor", str(anchors), "--database", url)
    assert code == 1 and "CUT_OFF" in out and "LEDGER TAMPERED" in out


def test_the_anchor_file_is_never_written_through_a_symlink(
        sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_db.url.render_as_string(hide_password=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "anchors.jsonl"
    link.symlink_to(victim)
    code, _, err = run(capsys, "--database", url, "audit", "anchor", "--to", str(link))
    assert code == 2 and "symlink" in err and victim.read_text() == "keep me\n"
    code, _, err = run(capsys, "--database", url, "audit", "verify", "--anchor", str(link))
    assert code == 2 and "symlink" in err


def test_a_forged_anchor_line_is_refused(sqlite_db: Database, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_db.url.render_as_string(hide_password=False)
    anchors = tmp_path / "anchors.jsonl"
    consent(sqlite_db, seed_call(sqlite_db))
    assert run(capsys, "--database", url, "audit", "anchor", "--to", str(anchors))[0] == 0
    line = json.loads(anchors.read_text())
    anchors.write_text(json.dumps({**line, "count": 0}) + "\n")  # someone who can write it
    code, _, err = run(capsys, "--database", url, "audit", "verify", "--anchor", str(anchors))
    assert code == 2 and "signature does not verify" in err


def test_an_auditor_verifies_with_the_public_keys_only(
        sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_db.url.render_as_string(hide_password=False)
    consent(sqlite_db, seed_call(sqlite_db))
    code, public, _ = run(capsys, "audit", "public-key")
    assert code == 0
    assert [json.loads(line)["algorithm"] for line in public.splitlines()] == ["ed25519"]
    secret = keys.load(keys.LEDGER).current.secret.hex()
    assert secret not in public
    path = tmp_path / "ledger.pub"
    path.write_text(public)
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(tmp_path / "no-keys"))  # the auditor's machine
    assert run(capsys, "--database", url, "audit", "verify")[0] == 2  # no keyring: cannot
    code, out, _ = run(capsys, "--database", url, "audit", "verify", "--public-keys",
                       str(path), "--anchor", str(tmp_path / "none.jsonl"))
    assert code == 2  # an anchor named but missing
    code, out, _ = run(capsys, "--database", url, "audit", "verify", "--public-keys",
                       str(path), "--json")
    assert code == 0 and "phone hashes not checked" in " ".join(json.loads(out)["notes"])
    auditor = LedgerSigner.from_public_keys(path)
    assert not auditor.can_sign and auditor.phone_hash("13812345678") is None


def test_entries_signed_before_a_rotation_still_verify(
        sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "rotation-keys"
    for name in keys.KEYRINGS:
        keys.ensure(name, folder)
    monkeypatch.setenv(keys.KEYS_DIR_ENV, str(folder))
    call = seed_call(sqlite_db)
    consent(sqlite_db, call)
    old_key = LedgerSigner.load().key_id
    keys.rotate(keys.LEDGER, folder)
    consent(sqlite_db, call)
    signer = LedgerSigner.load()
    with sqlite_db.session() as session:
        check = ConsentLedger(session, signer).verify()
        used = session.execute(text("SELECT key_id FROM consents ORDER BY id")).scalars()
        assert list(used) == [old_key, signer.key_id] and old_key != signer.key_id
    assert check.ok
    # A keyring that lost the old key names the entry it cannot check.
    only_new = LedgerSigner.from_keyring(keys.Keyring(keys.LEDGER,
                                                      (keys.load(keys.LEDGER).current,)))
    with sqlite_db.session() as session:
        assert ConsentLedger(session, only_new).verify().problems[0].kind == "unknown_key"
