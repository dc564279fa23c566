"""bench/voicebench/sipp.py: the customer's answers SIPp plays, as RTP in a pcap."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from bench.voicebench.capacity import group_cpu_s, pid_cpu_s
from bench.voicebench.sipp import (
    ALAW_SILENCE,
    UAS_SCENARIO,
    caller_packets,
    read_pcap_payloads,
    write_pcap,
)
from voice.audio.g711 import alaw_encode


def tone(ms: int, value: int = 8000) -> bytes:
    return struct.pack("<h", value) * (8 * ms)


def test_each_answer_starts_at_its_second_between_silence() -> None:
    frames = caller_packets([(1.0, tone(100)), (0.2, tone(50))], total_s=2.0)
    assert len(frames) == 100  # 2 s of 20 ms packets
    assert all(len(f) == 160 for f in frames)
    spoken = [i for i, f in enumerate(frames) if f != ALAW_SILENCE]
    assert spoken == [10, 11, 12, *range(50, 55)]  # 50 ms pads to 3 packets
    assert frames[50] == alaw_encode(tone(20))


def test_an_answer_due_while_another_plays_follows_it() -> None:
    frames = caller_packets([(0.0, tone(100)), (0.04, tone(40))], total_s=0.5)
    spoken = [i for i, f in enumerate(frames) if f != ALAW_SILENCE]
    assert spoken == list(range(7))


def test_the_pcap_holds_the_packets_at_20_ms(tmp_path: Path) -> None:
    frames = caller_packets([(0.1, tone(60))], total_s=0.4)
    path = tmp_path / "caller.pcap"
    write_pcap(path, frames)
    assert path.read_bytes()[:4] == struct.pack("<I", 0xA1B2C3D4)
    packets = read_pcap_payloads(path)
    assert [round(t, 3) for t, _ in packets] == [round(0.02 * i, 3) for i in range(20)]
    assert [p for _, p in packets] == frames


def test_the_scenario_names_the_pcap_and_the_bye_timeout() -> None:
    text = UAS_SCENARIO.format(pcap="/tmp/x.pcap", bye_timeout_ms=120000,
                               ring_min_ms=500, ring_max_ms=8500)
    assert 'play_pcap_audio="/tmp/x.pcap"' in text
    assert 'timeout="120000"' in text
    assert "a=rtpmap:8 PCMA/8000" in text
    assert '<pause distribution="uniform" min="500" max="8500"/>' in text


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sip-tester not installed")
def test_sipp_accepts_the_scenario(tmp_path: Path) -> None:
    """SIPp parses the scenario and reads the pcap (a call limit of 0: it loads both, then
    ends)."""
    import subprocess

    from bench.voicebench.sipp import free_udp_port

    frames = caller_packets([(0.0, tone(40))], total_s=0.2)
    write_pcap(tmp_path / "c.pcap", frames)
    scenario = tmp_path / "uas.xml"
    scenario.write_text(UAS_SCENARIO.format(pcap=tmp_path / "c.pcap", bye_timeout_ms=1000,
                                            ring_min_ms=0, ring_max_ms=10))
    done = subprocess.run(["sipp", "-sf", str(scenario), "-i", "127.0.0.1",
                           "-p", str(free_udp_port()), "-m", "0", "-nostdin", "-timeout", "1s"],
                          capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "npkts 10" in done.stdout + done.stderr  # 0.2 s of 20 ms packets


def test_cpu_of_this_process_and_its_group_are_counted() -> None:
    import os

    sum(i * i for i in range(200_000))
    assert pid_cpu_s(os.getpid()) > 0
    assert group_cpu_s(os.getpgid(0)) >= pid_cpu_s(os.getpid())
