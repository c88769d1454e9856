"""Helpers shared by the benchmark scripts (standard library only).

Each bench script is runnable alone (``python benchmarks/bench_x.py``): progress goes to
stderr, one JSON document to stdout. ``run_all.py`` collects those documents.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / "work"
PASSPHRASE = "كلمة سر للقياس فقط — benchmark only"
MIN_FREE_BYTES = 6 * 10**9


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def athar_bin() -> str:
    """The `athar` next to the running interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / "athar"
    if here.exists():
        return str(here)
    found = shutil.which("athar")
    if found is None:
        sys.exit("benchmark: cannot find the `athar` command; install the project first")
    return found


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        sys.exit(f"benchmark: missing tools {', '.join(missing)} (apt-get install age coreutils)")


def check_disk(path: Path, need: int = MIN_FREE_BYTES) -> int:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < need:
        sys.exit(
            f"benchmark: only {free / 1e9:.1f} GB free under {path}; need at least "
            f"{need / 1e9:.0f} GB. Free some space (or delete {WORK}) and run again."
        )
    return free


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores; idle and iowait excluded)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICK


def wait_for_quiet(max_busy_cores: float = 0.2, max_wait: float = 120.0) -> float:
    """Wait until the rest of the machine is near idle (others share this VM); return the
    seconds waited. Gives up after *max_wait* and measures anyway (the noise is recorded)."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        before = cpu_busy_seconds()
        time.sleep(1.0)
        if cpu_busy_seconds() - before < max_busy_cores:
            break
    waited = time.monotonic() - started
    if waited > 2:
        log(f"  (waited {waited:.0f} s for other load on the machine to settle)")
    return waited


class Noise:
    """CPU time used by *other* processes during a measured span (a noise gauge)."""

    def __init__(self) -> None:
        self.busy0 = cpu_busy_seconds()
        self.own0 = self._own()

    @staticmethod
    def _own() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def foreign_cpu_s(self) -> float:
        busy = cpu_busy_seconds() - self.busy0
        return max(0.0, busy - (self._own() - self.own0))


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_kib: int  # ru_maxrss of the child (and any children it waited for)
    returncode: int
    foreign_cpu_s: float = 0.0  # CPU seconds other processes used meanwhile


def run_measured(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    check: bool = True,
) -> Run:
    """Run *cmd*, return its wall time and peak RSS, measured with wait4() on that child.

    wait4() returns the rusage of exactly this child, so no RUSAGE_CHILDREN deltas are
    needed; ru_maxrss is the child's high-water mark in KiB on Linux.
    """
    noise = Noise()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env) if env else None,
        stdout=stdout,
        stdin=stdin,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    foreign = noise.foreign_cpu_s()  # the reaped child is in RUSAGE_CHILDREN by now
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
        )
    return Run(seconds, int(usage.ru_maxrss), proc.returncode, foreign)


def athar_env(vault: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ATHAR_VAULT"] = str(vault)
    env["ATHAR_PASSPHRASE"] = PASSPHRASE
    env["NO_COLOR"] = "1"
    return env


def athar_init(vault: Path) -> None:
    if vault.exists():
        shutil.rmtree(vault)
    run_measured([athar_bin(), "init", "--json"], env=athar_env(vault))


def warm_cache(files: Sequence[Path]) -> int:
    total = 0
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while chunk := fh.read(8 << 20):
                total += len(chunk)
    return total


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def source_fingerprint() -> str:
    """Hash of the athar sources, so data built by other code is not silently reused."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "athar").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
