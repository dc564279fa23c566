"""TtsWorker and warm_many: real spawned worker processes with fake (picklable) engines."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from array import array
from pathlib import Path

import pytest

from voice.tts.cache import PromptCache
from voice.tts.espeak import EspeakSynthesizer, Synthesizer, read_wav, write_wav
from voice.tts.worker import TtsWorker, warm_many


class ToneSynthesizer(Synthesizer):
    """One 10 ms block per character; ``slow`` sleeps, a text with 坏 fails, 卡 hangs."""

    def __init__(self, slow: float = 0.0) -> None:
        self.slow = slow

    @property
    def voice_id(self) -> str:
        return "tone"

    def synthesize(self, text: str) -> bytes:
        if "卡" in text:
            time.sleep(60)
        if "坏" in text:
            raise RuntimeError("engine broke")
        time.sleep(self.slow)
        return b"".join(array("h", [ord(ch) % 30000] * 80).tobytes() for ch in text)


def _pcm(text: str) -> bytes:
    return ToneSynthesizer().synthesize(text)


def test_speech_serves_memory_then_synthesises_a_dynamic_text_in_a_worker(
        tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, ToneSynthesizer())
    cache.warm(["您好"])

    async def run() -> tuple[bytes, bytes, bytes, dict[str, int]]:
        async with TtsWorker(cache) as worker:
            hit = await worker.speech("您好")
            # Two calls ask for the same new text at once: one synthesis.
            first, second = await asyncio.gather(worker.speech("明天上午十点"),
                                                 worker.speech("明天上午十点"))
            assert await worker.speech("明天上午十点") == first
            return hit, first, second, worker.stats

    hit, first, second, stats = asyncio.run(run())
    assert hit == _pcm("您好")
    assert first == second == _pcm("明天上午十点")
    assert stats == {"memory_hits": 2, "file_hits": 0, "synthesised": 1, "failed": 0}
    # The worker process wrote the disk entry: a restarted gateway finds it.
    assert read_wav(cache.path("明天上午十点"))[1] == first


def test_speech_reads_a_file_off_the_loop_and_recorded_prompts_by_text(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    recorded = array("h", [777] * 800).tobytes()
    write_wav(prompts / "utter_bye.wav", recorded)
    PromptCache(tmp_path / "c", ToneSynthesizer()).warm(["好的"])
    cache = PromptCache(tmp_path / "c", ToneSynthesizer(), recorded_dir=prompts)
    cache.remember_responses({"再见。": "utter_bye"})

    async def run() -> tuple[bytes, bytes, dict[str, int]]:
        async with TtsWorker(cache) as worker:
            return await worker.speech("好的"), await worker.speech("再见。"), worker.stats

    ok, bye, stats = asyncio.run(run())
    assert (ok, bye) == (_pcm("好的"), recorded)
    assert stats == {"memory_hits": 0, "file_hits": 2, "synthesised": 0, "failed": 0}


def test_a_failing_synthesis_reaches_the_caller(tmp_path: Path) -> None:
    async def run() -> None:
        async with TtsWorker(PromptCache(tmp_path, ToneSynthesizer())) as worker:
            with pytest.raises(RuntimeError, match="engine broke"):
                await worker.speech("坏")
            assert worker.stats["failed"] == 1
            assert await worker.speech("好") == _pcm("好")

    asyncio.run(run())


def test_a_stuck_worker_times_out_and_is_replaced(tmp_path: Path) -> None:
    async def run() -> None:
        async with TtsWorker(PromptCache(tmp_path, ToneSynthesizer()), timeout_s=3) as worker:
            await worker.start()
            with pytest.raises(TimeoutError):
                await worker.speech("卡住")
            assert await worker.speech("好") == _pcm("好")

    start = time.perf_counter()
    asyncio.run(run())
    assert time.perf_counter() - start < 20


def test_the_event_loop_keeps_running_during_a_synthesis(tmp_path: Path) -> None:
    async def run() -> int:
        async with TtsWorker(PromptCache(tmp_path, ToneSynthesizer(slow=1.0))) as worker:
            await worker.start()
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.02)
                    ticks += 1

            task = asyncio.create_task(ticker())
            await worker.speech("一二三")
            task.cancel()
            return ticks

    assert asyncio.run(run()) >= 30  # ~50 ticks of 20 ms in the 1 s synthesis


def test_only_one_or_two_worker_processes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 or 2"):
        TtsWorker(PromptCache(tmp_path, ToneSynthesizer()), processes=3)


@pytest.mark.parametrize("processes", [1, 2])
def test_warm_many_in_parallel(tmp_path: Path, processes: int) -> None:
    cache = PromptCache(tmp_path, ToneSynthesizer(slow=0.3))
    cache.warm(["一"])
    texts = ["一", "二", "三", " 二 ", "四", "五", "坏"]
    report = warm_many(cache, texts, processes=processes)
    assert {k: v for k, v in report.items() if k not in ("seconds", "slowest_seconds")} == {
        "total": 6, "cached": 1, "synthesised": 4, "failed": 1,
        "errors": {"坏": "RuntimeError: engine broke"}}
    assert report["slowest_seconds"] >= 0.3
    for text in ("二", "三", "四", "五"):
        assert read_wav(cache.path(text))[1] == _pcm(text)
    again = warm_many(cache, texts, processes=processes)
    assert (again["cached"], again["synthesised"]) == (5, 0)


def test_worker_warm_many_records_responses_and_loads_memory(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, ToneSynthesizer())

    async def run() -> dict[str, int]:
        async with TtsWorker(cache) as worker:
            report = await worker.warm_many(iter(["一", "二"]))
            assert report["synthesised"] == 2
            await worker.speech("一")
            await worker.speech("二")
            return worker.stats

    assert asyncio.run(run())["memory_hits"] == 2


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_real_espeak_in_a_worker_process(tmp_path: Path) -> None:
    async def run() -> bytes:
        async with TtsWorker(PromptCache(tmp_path, EspeakSynthesizer())) as worker:
            return await worker.speech("好的，我们会在明天上午10点再联系您，再见。")

    pcm = asyncio.run(run())
    assert 1.5 < len(pcm) / 2 / 8000 < 10


PARENT = """
import os, sys
from pathlib import Path
from voice.tts.cache import PromptCache
from tests.unit.voice.test_tts_worker import ToneSynthesizer
from voice.tts.worker import _pool

pool = _pool(PromptCache(Path(sys.argv[1]), ToneSynthesizer()), 1)
print(pool.submit(os.getpid).result(timeout=60), flush=True)
sys.stdin.read()  # until killed
"""


def test_workers_end_when_their_gateway_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to shut the pool down: the worker notices by itself."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[3])
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent's wait counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
