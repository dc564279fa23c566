"""Start and stop the Rasa server and the action server as child processes.

Used by `waihu chat`, `waihu demo`, the end-to-end tests and the benchmarks: each gets its
own free ports on 127.0.0.1 and its own database URL, and ends only the processes it
started (by PID).

Neither server is open. Each stack has two secrets, random unless given (`waihu run` takes
them from the environment): the Rasa token, which Rasa's HTTP API (`--auth-token`) and the
telephone's channel (waihu_rasa/channel.py) ask for, and the action server's secret, which
Rasa sends in a header (the endpoints file) and the action server checks (actions/server.py).
They reach the children through their environment only, never the command line or a file
(`ps` shows a command line to every user of the machine). `RasaStack.endpoint` is what a
client needs to talk to Rasa: its URL and token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.channel import TOKEN_ENV as RASA_TOKEN_ENV
from bot.channel import RasaEndpoint

log = logging.getLogger("waihu.services")

REPO = Path(__file__).resolve().parents[1]
RASA_BIN = REPO / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = REPO / ".venv-rasa" / "bin" / "python"
MODEL = REPO / "models" / "waihu.tar.gz"
# The action server's shared secret (actions/server.py checks it).
ACTIONS_TOKEN_ENV = "WAIHU_ACTIONS_TOKEN"
MIN_TOKEN_CHARS = 16  # both servers refuse shorter secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def env_token(name: str) -> str:
    """The secret in the environment variable *name*, else a new random one."""
    return os.environ.get(name) or new_token()


def endpoints_yaml(actions_url: str) -> str:
    """The endpoints file Rasa reads: the action server, and the header with its secret,
    which Rasa expands from its environment (unquoted, or it would not)."""
    return (f'action_endpoint:\n  url: "{actions_url}/webhook"\n'
            f"  headers:\n    Authorization: Bearer ${{{ACTIONS_TOKEN_ENV}}}\n"
            "  enable_selective_domain: true\n")


class ServiceError(RuntimeError):
    """A service did not start; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_ok(url: str, data: bytes | None = None) -> bool:
    request = urllib.request.Request(url, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_file = self.log_path.open("wb")
        self.popen = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=log_file,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log_file.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise ServiceError(f"{self.name} exited with code {self.popen.returncode}:\n"
                               f"{self.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """End the process and everything it started (its own session: Sanic's worker
        outlives a parent killed alone), politely first, then by force after *timeout*."""
        # Only a group whose leader we hold is ours: once the leader has been reaped, its id
        # may be reused by an unrelated process group (pid_max is 32768 here).
        if self.popen is None or self.popen.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout)
        # What the leader left behind: while a member lives, the group's id cannot be reused.
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)  # start_new_session: the group id is its pid


@dataclass
class RasaStack:
    """A Rasa server (`.venv-rasa`) and an action server (`.venv`) on free local ports."""

    database_url: str
    model: Path = MODEL
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="waihu-rasa-")))
    processes: list[Process] = field(default_factory=list)
    keep_logs: bool = False  # keep workdir (endpoints, logs) after stop; kept anyway on failure
    rasa_token: str = field(default_factory=new_token, repr=False)
    actions_token: str = field(default_factory=new_token, repr=False)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def endpoint(self) -> RasaEndpoint:
        """Rasa's URL and token, for the clients (`RasaEndpoint.channel`)."""
        return RasaEndpoint(self.rasa_url, self.rasa_token)

    def start(self, timeout: float = 180.0) -> RasaStack:
        if not RASA_BIN.exists() or not self.model.exists():
            raise ServiceError("Rasa is not set up: run `make setup` first "
                               f"(needs {RASA_BIN} and {self.model})")
        for name, token in ((RASA_TOKEN_ENV, self.rasa_token),
                            (ACTIONS_TOKEN_ENV, self.actions_token)):
            if len(token) < MIN_TOKEN_CHARS:
                raise ServiceError(f"{name} is shorter than {MIN_TOKEN_CHARS} characters")
        # Each child gets the secrets it needs and no other.
        base = {k: v for k, v in os.environ.items()
                if k not in (RASA_TOKEN_ENV, ACTIONS_TOKEN_ENV)}
        base.update({"WAIHU_DATABASE_URL": self.database_url,
                     "RASA_TELEMETRY_ENABLED": "false", "PYTHONUNBUFFERED": "1"})
        endpoints = self.workdir / "endpoints.yml"
        endpoints.write_text(endpoints_yaml(self.actions_url))
        actions = Process("action server", [
            sys.executable, "-m", "actions.server", "--actions", "actions",
            "--port", str(self.actions_port), "--interface", "127.0.0.1"],
            self.workdir / "actions.log", {**base, ACTIONS_TOKEN_ENV: self.actions_token})
        rasa = Process("rasa server", [
            str(RASA_PYTHON), "-m", "waihu_rasa.run", "run", "--enable-api",
            "--model", str(self.model),
            "--port", str(self.rasa_port), "--interface", "127.0.0.1",
            "--endpoints", str(endpoints), "--credentials", str(REPO / "credentials.yml"),
            "--log-file", str(self.workdir / "rasa-debug.log")],
            self.workdir / "rasa.log",
            {**base, RASA_TOKEN_ENV: self.rasa_token, ACTIONS_TOKEN_ENV: self.actions_token})
        self.processes = [actions, rasa]
        for process in self.processes:
            process.start()
        try:
            self._wait(timeout)
        except BaseException:
            self.keep_logs = True
            self.stop()
            log.error("services.failed logs=%s", self.workdir)
            raise
        log.info("services.ready rasa=%s actions=%s", self.rasa_url, self.actions_url)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        warm_up = json.dumps({"text": "你好"}).encode()  # also loads jieba and TensorFlow
        checks = [(self.processes[0], f"{self.actions_url}/health", None),
                  (self.processes[1], f"{self.rasa_url}/model/parse?"
                   + urllib.parse.urlencode({"token": self.rasa_token}), warm_up)]
        for process, url, body in checks:
            while not _http_ok(url, body):
                process.check_alive()
                if time.monotonic() > deadline:
                    raise ServiceError(f"{process.name} not ready after {timeout:.0f} s:\n"
                                       f"{process.tail()}")
                time.sleep(0.5)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if not self.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RasaStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
