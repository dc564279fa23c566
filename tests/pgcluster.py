"""A private PostgreSQL cluster for a test that must stop or restart its database.

The machine's shared server (127.0.0.1:5432) serves every other test; a test that restarts
PostgreSQL gets a cluster of its own: `initdb` in a temporary folder, `pg_ctl` on a free
port of 127.0.0.1 (and a socket in the same folder), trust authentication, no fsync.  Only
this cluster is ever stopped, through its own data folder.  PostgreSQL refuses to run as
root, so as root the commands run as the `postgres` system user (`runuser`), which then
owns the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from bot.services import free_port

BIN_DIRS = (Path("/usr/local/bin"), Path("/usr/lib/postgresql/15/bin"))
SERVICE_USER = "postgres"


def _binary(name: str) -> str | None:
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def available() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    if _binary("initdb") is None or _binary("pg_ctl") is None:
        return "initdb/pg_ctl not found"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and there is no {SERVICE_USER!r} user to run PostgreSQL"
    return None


class PrivateCluster:
    """`with PrivateCluster() as pg: pg.url` … `pg.restart()`; stopped and removed at exit."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="waihu-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://waihu@127.0.0.1:{self.port}/waihu"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): "
                               f"{done.stderr[-2000:]}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(_binary("pg_ctl")), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", str(int(self.timeout_s)), *args)

    def start(self) -> PrivateCluster:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        self._run(str(_binary("initdb")), "-D", str(self.data), "-U", "waihu", "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.folder} -c fsync=off")
        self._pg_ctl("-o", options, "start")
        self.running = True
        self._run("psql" if _binary("psql") is None else str(_binary("psql")),
                  "-h", "127.0.0.1", "-p", str(self.port), "-U", "waihu", "-d", "postgres",
                  "-c", "CREATE DATABASE waihu")
        return self

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server comes back."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        if self.running:
            try:
                self._pg_ctl("-m", "fast", "stop")
            finally:
                self.running = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
