"""A throwaway PostgreSQL server for the tests: initdb into a fresh temp dir, listen only on a
unix socket, and remove everything again on stop.

initdb and postgres refuse to run as root, so when the tests run as root the cluster belongs
to (and the server runs as) an unprivileged system user (`postgres`, else `nobody`). The
bootstrap superuser role is always `postgres`, and the socket uses trust authentication.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROLE = "postgres"
STARTUP_TIMEOUT = 30.0
SERVER_USERS = ("postgres", "nobody")  # tried in order when running as root
_SOCKET_NAME_MAX = 107  # sun_path is 108 bytes including the terminating NUL


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin dir (Debian layout first, then PATH)."""

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if found:
        return max(found, key=version)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).resolve().parent)):
        return Path(initdb).resolve().parent
    return None


def _pick_locale() -> str:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "C"
    names = {n.strip().lower().replace("-", "") for n in out.split()}
    return "C.UTF-8" if "c.utf8" in names else "C"


def _traversable(path: Path, uid: int, gid: int) -> bool:
    """Can *uid* reach *path* (x on it and every ancestor)? Ignores supplementary groups."""
    for p in (path, *path.parents):
        st = p.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class PostgresServer:
    """One cluster. `start()`, then `create_database()` / `url()` / `drop_database()`, `stop()`."""

    def __init__(self, bindir: Path, port: int | None = None) -> None:
        self.bindir = bindir
        # No port in the URL means libpq falls back to $PGPORT, so listen there if it is set.
        self.port = port or int(os.environ.get("PGPORT") or 5432)
        self.locale = _pick_locale()
        self.base: Path | None = None
        self.startup_seconds: float | None = None
        if os.geteuid() == 0:
            pw = self._server_user()
            self.uid, self.gid, self.user = pw.pw_uid, pw.pw_gid, pw.pw_name
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.user = pwd.getpwuid(self.uid).pw_name

    @staticmethod
    def _server_user() -> pwd.struct_passwd:
        for name in SERVER_USERS:
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError(f"running as root, but none of the users {SERVER_USERS} exists")

    # -- paths -----------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "server.log"

    def _make_base(self) -> Path:
        sock_suffix = len("/sock/.s.PGSQL.") + len(str(self.port))
        for parent in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
            p = Path(parent)
            if not p.is_dir() or not _traversable(p, self.uid, self.gid):
                continue
            base = Path(tempfile.mkdtemp(prefix="athar-pg-", dir=p))
            if len(str(base)) + sock_suffix <= _SOCKET_NAME_MAX:
                return base
            base.rmdir()
        raise RuntimeError(
            f"no temp dir that user {self.user!r} can reach and that is short enough for a "
            "unix socket path; set TMPDIR to e.g. /tmp"
        )

    # -- processes -------------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.base),
            "LC_ALL": "C",
            "TZ": "UTC",  # deterministic; also spares initdb its time zone probe
        }
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with exit code {proc.returncode}\n"
                f"{proc.stdout}{proc.stderr}{self.log_tail()}"
            )
        return proc

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""
        return "\n--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def start(self) -> PostgresServer:
        t0 = time.monotonic()
        self.base = self._make_base()
        try:
            self.socket_dir.mkdir()
            for p in (self.base, self.socket_dir):
                os.chown(p, self.uid, self.gid)
                p.chmod(0o700)
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                f"--locale={self.locale}",
                "--no-sync",
                "--no-instructions",
            )
            sockdir = str(self.socket_dir).replace("'", "''")
            with (self.datadir / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# athar test cluster\n"
                    "listen_addresses = ''\n"
                    f"unix_socket_directories = '{sockdir}'\n"
                    f"port = {self.port}\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                )
            timeout = str(int(STARTUP_TIMEOUT))
            logfile = str(self.logfile)
            self._run(
                "pg_ctl", "start", "-D", str(self.datadir), "-l", logfile, "-w", "-t", timeout
            )
            self._wait_ready(t0 + STARTUP_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        import psycopg

        while True:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not accept connections on {self.socket_dir} within "
                        f"{STARTUP_TIMEOUT:.0f}s: {exc}{self.log_tail()}"
                    ) from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if self.base is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            args = ("stop", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30")
            proc = self._run("pg_ctl", *args, check=False)
            if proc.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg autocommit connection as the superuser."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=ROLE,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL: postgresql+psycopg://postgres@/DBNAME?host=/socket/dir"""
        return f"postgresql+psycopg://{ROLE}@/{dbname}?host={quote(str(self.socket_dir))}"

    def create_database(self, hint: str = "") -> str:
        """Create an empty UTF-8 database with a fresh name (derived from *hint*)."""
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40]
        name = f"t_{slug}_{uuid.uuid4().hex[:10]}" if slug else f"t_{uuid.uuid4().hex[:16]}"
        with self.connect() as conn:
            conn.execute(
                f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0 "
                f"LC_COLLATE '{self.locale}' LC_CTYPE '{self.locale}'"
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
