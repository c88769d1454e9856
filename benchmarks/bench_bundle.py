"""Bundles (issue 5): export+import against `tar | age` and `age -d | tar -x`.

For each size (default 256 MiB and 1 GiB of random files, 8 files each):
1. Preparation, not timed: a sending vault holds the files (``athar add``), the receiving
   vault is enrolled with it; one reference athar bundle and one reference baseline
   ``.age`` file are made (the import steps read them), which also warms the page cache
   and the compiled-module cache.
2. Rounds (``--rounds``, default 3). In each round every step runs once, in an order
   shuffled per round (``--seed``): for each age engine inside athar (``--engines``:
   the Debian ``age`` program in a child process, and pyrage in-process) the export and
   the import (into a fresh copy of the receiving vault), each a child process calling
   the sync service; with the engine ``cli``, the ``athar bundle export`` and ``athar
   bundle import`` commands as a user runs them (and ``athar device id`` for their fixed
   cost); a process that only unlocks (the fixed cost); the baseline
   ``tar -c | age -r RECIPIENT`` and ``age -d -i IDENTITY | tar -x``; and the same
   baseline made durable (``sync`` of what it wrote, inside its time). Before every
   step: an untimed ``sync`` and ``--settle`` seconds of sleep. Each step: wall time,
   CPU seconds (of which system), peak RSS of its process tree, and the CPU other
   processes used meanwhile (noise).
3. Parts (unless ``--skip-parts``): the reference bundle is cut into 2 MB parts with 20%
   redundancy; bytes of all parts over the bundle's size against n/k.

The ratio is (export + import) / (tar|age + age -d|tar -x), taken inside each round; the
report gives the median, the quartiles and the range of each step and of the per-round
ratios. ``--workdir`` chooses where everything lives: on tmpfs (``/dev/shm/...``; free RAM
is checked) neither side's writes or fsyncs reach a disk, which removes the disk's
writeback variance from both and compares the software's own work; on a disk the
durable cost counts. The two are reported apart (the ``storage`` field), never mixed.
"Transfer alone" leaves out the fixed cost of each athar process (interpreter start and
the Argon2id unlock). Athar does more work than the baseline by design: it decrypts from
its vault on the way out, and on the way in re-encrypts every file under a fresh key
into the receiving vault, checks every SHA-256 and signature and fsyncs before it
commits; the plain baseline writes plaintext and never fsyncs.

The athar children cache compiled modules (in the work folder, not the source tree) as
any installed copy does, unless ``--no-bytecode-cache`` (this VM sets
PYTHONDONTWRITEBYTECODE, which makes every process recompile every module).

``--old-code DIR`` (a folder holding an older copy of the ``athar`` package, e.g. made with
``cp -r src/athar DIR/`` before a change) adds that code's export and import to every
round as the engine ``old``: before and after side by side, in the same conditions.

    python benchmarks/bench_bundle.py [--sizes 256,1024] [--files 8] [--rounds 3]
        [--engines program,pyrage] [--workdir DIR] [--settle 1] [--quiet-wait 5]
        [--seed 0] [--no-bytecode-cache] [--skip-parts] [--old-code DIR] [--doc]

Progress goes to stderr, one JSON document to stdout (markdown with --doc).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from athar.sync import agekeys, parts, service
from athar.vault.vault import Vault
from benchcommon import (
    PASSPHRASE,
    WORK,
    Run,
    athar_bin,
    athar_env,
    athar_init,
    check_disk,
    emit,
    log,
    median,
    mib,
    require_tools,
    run_measured,
    wait_for_quiet,
)

MIB = 1 << 20
PART_SIZE = 2_000_000
REDUNDANCY = 0.2
OLD = "old"  # the engine name of --old-code's steps
QUIET_WAIT = 5.0  # the shared VM is rarely quiet; the noise is recorded instead


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_tree(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """run_measured, but the peak RSS is the largest VmHWM seen in the process tree
    (polled every 20 ms). wait4's ru_maxrss is not used: on Linux a child inherits its
    parent's high-water mark across fork and exec, so every child of this (large)
    process would report at least the parent's size."""
    rss = [0]
    done = threading.Event()
    mine = Path("/proc/self/cmdline").read_bytes()

    def poll() -> None:
        while not done.is_set():
            for pid in _tree(os.getpid())[1:]:
                try:  # a child between fork and exec still has this process's memory
                    if Path(f"/proc/{pid}/cmdline").read_bytes() == mine:
                        continue
                except OSError:
                    continue
                rss[0] = max(rss[0], _hwm_kib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        run = run_measured(cmd, env=env)
    finally:
        done.set()
        watcher.join()
    return Run(run.seconds, rss[0], run.returncode, run.foreign_cpu_s)


def make_files(folder: Path, total: int, count: int) -> list[Path]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    each = total // count
    paths = []
    for i in range(count):
        path = folder / f"تسجيل-{i:02d}.bin"
        with open(path, "wb") as fh:
            left = each
            while left:
                chunk = os.urandom(min(left, 8 * MIB))
                fh.write(chunk)
                left -= len(chunk)
        paths.append(path)
    return paths


def enrol_pair(field: Path, office: Path) -> str:
    """Make each vault trust the other; return the office's age recipient."""
    with Vault.open(field, PASSPHRASE) as a, Vault.open(office, PASSPHRASE) as b:
        for v, other, name in ((a, b, "office"), (b, a, "field")):
            card = service.card(other)
            service.enrol(v, card["key"], card["age_recipient"], name, admin=False)
        return service.card(b)["age_recipient"]


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _cpu_children() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime, me.ru_stime


def _step(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """run_tree, plus the CPU seconds of the child and everything it waited for (age,
    tar), of which system CPU (page-cache writes, pipes) apart. Afterwards, untimed,
    everything written is flushed (os.sync): a step that leaves a GiB of dirty pages
    (the baseline never fsyncs) would otherwise slow whichever step writes next."""
    user0, sys0 = _cpu_children()
    run = run_tree(cmd, env)
    user1, sys1 = _cpu_children()
    os.sync()
    return {
        "seconds": run.seconds,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "sys_s": sys1 - sys0,
        "peak_rss_kib": run.peak_rss_kib,
        "foreign_cpu_s": run.foreign_cpu_s,
    }


def _mounted_fs(path: Path) -> str:
    """The file system type under *path* (longest mount point that contains it)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def storage_of(path: Path) -> str:
    """ "tmpfs" (memory: writes and fsyncs cost no disk time) or "disk (<fs type>)"."""
    kind = _mounted_fs(path.resolve())
    return "tmpfs" if kind in ("tmpfs", "ramfs") else f"disk ({kind})"


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def check_room(workdir: Path, need: int) -> None:
    """Disk space under *workdir*; on tmpfs also free RAM (tmpfs pages are RAM)."""
    check_disk(workdir, need)
    if storage_of(workdir) == "tmpfs" and mem_available() < need + (2 << 30):
        sys.exit(
            f"benchmark: {workdir} is on tmpfs and only {mem_available() / 2**30:.1f} GiB of "
            f"RAM is available; need {(need + (2 << 30)) / 2**30:.1f} GiB (the data, both "
            "vaults, the bundles and the baseline's files all live in memory)."
        )


def child_env(
    base: Path, bytecode: bool, engine: str | None = None, code: Path | None = None
) -> dict[str, str]:
    """The environment of the athar children. With *bytecode*, compiled modules are
    cached (in *base*/pycache, never in the source tree) as on any installed copy; a VM
    with PYTHONDONTWRITEBYTECODE set recompiles every module in every process. With
    *code*, the `athar` package is imported from that folder (an older copy)."""
    env = dict(os.environ)
    if engine is not None:
        env["ATHAR_AGE_ENGINE"] = "pyrage" if engine == "pyrage" else ""
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), env.get("PYTHONPATH")) if p)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    return env


def cli_env(vault: Path) -> dict[str, str]:
    """What the `athar` command needs beyond child_env: the vault and its passphrase."""
    return {"ATHAR_VAULT": str(vault), "ATHAR_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1"}


def quartiles(values: list[float]) -> dict[str, float]:
    """Median, quartiles, min and max (inclusive quartiles: the data's own range)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        q1 = q3 = ordered[0]
    else:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return {
        "median": round(median(ordered), 3),
        "q1": round(q1, 3),
        "q3": round(q3, 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "n": len(ordered),
    }


BASELINE_STEPS = ("tar_age", "age_tar_x", "tar_age_sync", "age_tar_x_sync")


def measure(
    size_mib: int,
    count: int,
    base: Path,
    engines: list[str],
    repeat: int,
    *,
    settle: float = 1.0,
    quiet_wait: float = QUIET_WAIT,
    seed: int = 0,
    bytecode: bool = True,
    with_parts: bool = True,
    old_code: Path | None = None,
) -> dict[str, Any]:
    """Prepare once, then *repeat* rounds; in each round every step runs once, in an
    order shuffled per round (so no side always runs first, after the other's
    writeback, or at the same point of the machine's drift). Every step reads a fixed
    input made before the rounds (the imports a reference bundle, the baseline's
    decryption a reference .age file), so steps do not depend on each other's output.
    Before each step: its untimed set-up, an untimed sync, *settle* seconds of sleep
    and up to *quiet_wait* seconds waiting for other jobs to calm down. With *old_code*
    (a folder holding an older `athar` package), its export and import run in the same
    rounds as the engine `old` (with the `age` program): before and after, compared
    inside each round."""
    if old_code is not None:
        engines = [*engines, OLD]
    total = size_mib * MIB
    rng = random.Random(seed)
    log(f"{size_mib} MiB in {count} files under {base} ({storage_of(base)}): writing data")
    data = base / "data"
    make_files(data, total, count)
    field, office0 = base / "field", base / "office0"
    athar_init(field)
    athar_init(office0)
    recipient = enrol_pair(field, office0)
    log("  athar add (not timed)")
    added = run_measured([athar_bin(), "add", str(data), "--json"], env=athar_env(field))
    ident = base / "office-age.txt"
    with Vault.open(office0, PASSPHRASE) as b:
        ident.write_text(agekeys.identity_string(b.keys.identity.encryption_secret) + "\n")
    ident.chmod(0o600)
    out, office, work = base / "bundle", base / "office", base / "work.json"
    age_file, dest = base / "baseline.age", base / "extracted"
    me = [sys.executable, __file__, "--child"]

    # The fixed inputs (and a warm-up: page cache, compiled modules), not timed.
    log("  reference bundle and reference .age file (not timed)")
    fresh(out)
    env0 = child_env(base, bytecode, engines[0])
    run_measured([*me, "export", str(field), str(out), str(work)], env=env0)
    (made,) = list(out.iterdir())
    ref_bundle = base / "reference-bundle.age"
    made.rename(ref_bundle)
    ref_age = base / "reference-baseline.age"
    script = 'set -o pipefail; tar -cf - -C "$1" . | age -r "$2" > "$3"'
    run_measured(["bash", "-c", script, "-", str(data), recipient, str(ref_age)])
    if "cli" in engines:  # compile the command line's modules once, outside the rounds
        cli = dict(child_env(base, bytecode), **cli_env(field))
        run_measured([athar_bin(), "device", "id", "--json"], env=cli)
    os.sync()

    def env_of(engine: str) -> dict[str, str]:
        return child_env(base, bytecode, engine, old_code if engine == OLD else None)

    if old_code is not None:  # compile the old copy's modules once, outside the rounds
        run_measured([*me, "unlock", str(field), str(out), str(work)], env=env_of(OLD))

    def athar_export(engine: str) -> dict[str, Any]:
        fresh(out)
        r = _step([*me, "export", str(field), str(out), str(work)], env_of(engine))
        r["data_seconds"] = float(work.read_text())
        (made,) = list(out.iterdir())
        r["bytes"] = made.stat().st_size
        shutil.rmtree(out)
        return r

    def athar_import(engine: str) -> dict[str, Any]:
        shutil.rmtree(office, ignore_errors=True)
        shutil.copytree(office0, office)
        r = _step([*me, "import", str(office), str(ref_bundle), str(work)], env_of(engine))
        r["data_seconds"] = float(work.read_text())
        shutil.rmtree(office)
        return r

    def fixed() -> dict[str, Any]:
        return _step([*me, "unlock", str(field), str(out), str(work)], child_env(base, bytecode))

    def tar_age(durable: bool) -> dict[str, Any]:
        # coreutils `sync FILE` fsyncs that file: as durable as athar's renamed bundle.
        script = 'set -o pipefail; tar -cf - -C "$1" . | age -r "$2" > "$3"'
        script += ' && sync "$3"' if durable else ""
        r = _step(["bash", "-c", script, "-", str(data), recipient, str(age_file)])
        age_file.unlink()
        return r

    def age_tar_x(durable: bool) -> dict[str, Any]:
        fresh(dest)
        script = 'set -o pipefail; age -d -i "$1" "$2" | tar -xf - -C "$3"'
        script += ' && sync "$3"/* "$3"' if durable else ""
        r = _step(["bash", "-c", script, "-", str(ident), str(ref_age), str(dest)])
        if sum(p.stat().st_size for p in dest.iterdir()) != total:
            raise RuntimeError("the baseline did not extract everything")
        shutil.rmtree(dest)
        return r

    def cli_export() -> dict[str, Any]:
        fresh(out)
        env = dict(child_env(base, bytecode, "program"), **cli_env(field))
        r = _step([athar_bin(), "bundle", "export", "--to", "office", "--out", str(out)], env)
        (made,) = list(out.iterdir())
        r["bytes"] = made.stat().st_size
        shutil.rmtree(out)
        return r

    def cli_import() -> dict[str, Any]:
        shutil.rmtree(office, ignore_errors=True)
        shutil.copytree(office0, office)
        env = dict(child_env(base, bytecode, "program"), **cli_env(office))
        r = _step([athar_bin(), "bundle", "import", str(ref_bundle)], env)
        shutil.rmtree(office)
        return r

    def cli_fixed() -> dict[str, Any]:
        # The command line up to the unlock, and a trivial command after it.
        env = dict(child_env(base, bytecode), **cli_env(field))
        return _step([athar_bin(), "device", "id", "--json"], env)

    steps: dict[str, Callable[[], dict[str, Any]]] = {"fixed": fixed}
    for engine in engines:
        if engine == "cli":
            steps["cli:export"], steps["cli:import"] = cli_export, cli_import
            steps["cli_fixed"] = cli_fixed
            continue
        steps[f"{engine}:export"] = partial(athar_export, engine)
        steps[f"{engine}:import"] = partial(athar_import, engine)
    steps["tar_age"] = partial(tar_age, False)
    steps["age_tar_x"] = partial(age_tar_x, False)
    steps["tar_age_sync"] = partial(tar_age, True)
    steps["age_tar_x_sync"] = partial(age_tar_x, True)

    rounds: list[dict[str, Any]] = []
    for n in range(repeat):
        order = list(steps)
        rng.shuffle(order)
        one: dict[str, Any] = {"order": order}
        for name in order:
            os.sync()
            time.sleep(settle)
            if quiet_wait > 0:
                wait_for_quiet(max_wait=quiet_wait)
            result = steps[name]()
            log(
                f"  [{n + 1}/{repeat}] {name}: {result['seconds']:.2f} s, "
                f"{result['cpu_s']:.2f} CPU s (system {result['sys_s']:.2f}), "
                f"others {result['foreign_cpu_s']:.1f} CPU s"
            )
            if ":" in name:
                engine, what = name.split(":")
                one.setdefault(engine, {})[what] = result
            else:
                one[name] = result
        base_s = one["tar_age"]["seconds"] + one["age_tar_x"]["seconds"]
        durable_s = one["tar_age_sync"]["seconds"] + one["age_tar_x_sync"]["seconds"]
        base_cpu = one["tar_age"]["cpu_s"] + one["age_tar_x"]["cpu_s"]
        for engine in engines:
            e, i, g = one[engine]["export"], one[engine]["import"], one[engine]
            fixed_step = one["cli_fixed" if engine == "cli" else "fixed"]
            for side_ in (e, i):  # the CLI reports no transfer time: whole minus fixed
                side_.setdefault("data_seconds", side_["seconds"] - fixed_step["seconds"])
            g["ratio"] = (e["seconds"] + i["seconds"]) / base_s
            g["durable_ratio"] = (e["seconds"] + i["seconds"]) / durable_s
            g["data_ratio"] = (e["data_seconds"] + i["data_seconds"]) / base_s
            g["cpu_ratio"] = (e["cpu_s"] + i["cpu_s"]) / base_cpu
            fixed_cpu = 2 * fixed_step["cpu_s"]
            g["data_cpu_ratio"] = (e["cpu_s"] + i["cpu_s"] - fixed_cpu) / base_cpu
            g["export_ratio"] = e["seconds"] / one["tar_age"]["seconds"]
            g["import_ratio"] = i["seconds"] / one["age_tar_x"]["seconds"]
            log(
                f"    {engine}: ratio {g['ratio']:.2f} (durable baseline "
                f"{g['durable_ratio']:.2f}, transfer alone {g['data_ratio']:.2f}, CPU "
                f"{g['cpu_ratio']:.2f}, CPU of the transfer alone {g['data_cpu_ratio']:.2f})"
            )
        rounds.append(one)
    bundle_bytes = ref_bundle.stat().st_size

    cut = base / "parts"
    wire_parts: dict[str, Any] | None = None
    if with_parts:
        log("  parts: 2 MB, 20% redundancy")
        files = parts.split(ref_bundle, fresh(cut), PART_SIZE, REDUNDANCY)
        groups = parts.plan_groups(max(1, -(-bundle_bytes // PART_SIZE)), REDUNDANCY)
        k = sum(g[0] for g in groups)
        n_parts = sum(g[1] for g in groups)
        wire = sum(p.stat().st_size for p in files)
        wire_parts = {
            "part_size": PART_SIZE,
            "redundancy": REDUNDANCY,
            "k": k,
            "n": n_parts,
            "files": len(files),
            "wire_bytes": wire,
            "wire_over_payload": round(wire / bundle_bytes, 4),
            "n_over_k": round(n_parts / k, 4),
            "excess_percent": round(100 * (wire / bundle_bytes - n_parts / k), 3),
        }
    for folder in (data, cut, out, field, office, office0):
        shutil.rmtree(folder, ignore_errors=True)
    for path in (ref_bundle, ref_age):
        path.unlink(missing_ok=True)

    def med(values: list[float]) -> float:
        return round(median(values), 3)

    def side(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seconds": med([r["seconds"] for r in runs]),
            "data_seconds": med([r["data_seconds"] for r in runs])
            if "data_seconds" in runs[0]
            else None,
            "cpu_s": med([r["cpu_s"] for r in runs]),
            "sys_s": med([r["sys_s"] for r in runs]),
            "peak_rss_mib": mib(max(r["peak_rss_kib"] for r in runs)),
            "foreign_cpu_s": round(sum(r["foreign_cpu_s"] for r in runs) / len(runs), 1),
            "distribution": {
                "seconds": quartiles([r["seconds"] for r in runs]),
                "cpu_s": quartiles([r["cpu_s"] for r in runs]),
            },
            "each": [
                {key: round(r[key], 3) for key in ("seconds", "cpu_s", "sys_s", "foreign_cpu_s")}
                for r in runs
            ],
        }

    ratio_keys = (
        "ratio",
        "durable_ratio",
        "data_ratio",
        "cpu_ratio",
        "data_cpu_ratio",
        "export_ratio",
        "import_ratio",
    )
    per_engine = {}
    for engine in engines:
        per_engine[engine] = {
            "export": side([r[engine]["export"] for r in rounds]),
            "import": side([r[engine]["import"] for r in rounds]),
            **{key: med([r[engine][key] for r in rounds]) for key in ratio_keys},
            "ratios": [round(r[engine]["ratio"], 3) for r in rounds],
            "durable_ratios": [round(r[engine]["durable_ratio"], 3) for r in rounds],
            "data_ratios": [round(r[engine]["data_ratio"], 3) for r in rounds],
            "distribution": {
                key: quartiles([r[engine][key] for r in rounds]) for key in ratio_keys
            },
        }
    return {
        "size_mib": size_mib,
        "files": count,
        "repeat": repeat,
        "storage": storage_of(base),
        "workdir": str(base),
        "settle_seconds": settle,
        "seed": seed,
        "bytecode_cached": bytecode,
        "orders": [r["order"] for r in rounds],
        "add_seconds": round(added.seconds, 1),
        "bundle_bytes": bundle_bytes,
        "engines": per_engine,
        "fixed": side([r["fixed"] for r in rounds]),
        **({"cli_fixed": side([r["cli_fixed"] for r in rounds])} if "cli" in engines else {}),
        **{name: side([r[name] for r in rounds]) for name in BASELINE_STEPS},
        "parts": wire_parts,
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    age = subprocess.run(["age", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "age": age,
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
    }


ENGINE_NAMES = {
    "program": "`age` program",
    "pyrage": "pyrage",
    "cli": "`athar bundle` commands (`age` program)",
    OLD: "`age` program, the code of `--old-code`",
}


def _q(d: dict[str, float], unit: str = " s", digits: int = 2) -> str:
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(d['median'])}{unit} ({f.format(d['q1'])}–{f.format(d['q3'])}; "
        f"{f.format(d['min'])}–{f.format(d['max'])})"
    )


def doc(result: dict[str, Any]) -> str:
    m = result["machine"]
    storages = sorted({r["storage"] for r in result["runs"]})
    lines = [
        "## Bundles (issue 5)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, age {m['age']}; "
        f"load average {m['load_average_at_start']} at the start (the VM is shared with "
        "other jobs: the `foreign` column is CPU seconds other processes used during each "
        "step). Storage of the work folder: "
        + ", ".join(f"**{x}**" for x in storages)
        + " (tmpfs: nothing reaches a disk, fsyncs cost nothing, for athar and the baseline "
        "alike; disk: the durable cost counts). Each round runs every step once in a "
        "shuffled order, with an untimed `sync` and a settle before each step; the ratio "
        "is taken inside each round. Medians; in brackets the quartiles, then the range.",
        "",
        "Export+import of random files between two vaults, against `tar -c | age -r` and "
        "`age -d -i | tar -x` on the same files (the ratio's goal is ≤ 1.2×). Each athar "
        "side is its own process; its time includes the interpreter start and the "
        "vault unlock (Argon2id, slow on purpose), the time in brackets is the transfer "
        "alone. Engine: who runs age inside athar (the Debian `age` program in a child "
        "process, or pyrage in-process).",
        "",
        "| size | storage | engine | athar export | athar import | tar\\|age | age -d\\|tar -x "
        "| ratio (each round) | transfer alone | CPU s athar / baseline "
        "| peak RSS export / import / baseline | foreign CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        t, d = r["tar_age"], r["age_tar_x"]
        for engine, g in r["engines"].items():
            e, i = g["export"], g["import"]
            rounds = ", ".join(f"{x:.2f}" for x in g["ratios"])
            lines.append(
                f"| {r['size_mib']} MiB ({r['files']} files) | {r['storage']} "
                f"| {ENGINE_NAMES.get(engine, engine)} "
                f"| {e['seconds']:.2f} s ({e['data_seconds']:.2f} s) "
                f"| {i['seconds']:.2f} s ({i['data_seconds']:.2f} s) "
                f"| {t['seconds']:.2f} s | {d['seconds']:.2f} s "
                f"| **{g['ratio']:.2f}×** ({rounds}) "
                f"| {g['data_ratio']:.2f}× (whole process: export {g['export_ratio']:.2f}×, "
                f"import {g['import_ratio']:.2f}×) "
                f"| {e['cpu_s'] + i['cpu_s']:.2f} / {t['cpu_s'] + d['cpu_s']:.2f} "
                f"({g['cpu_ratio']:.2f}×; transfer alone {g['data_cpu_ratio']:.2f}×) "
                f"| {e['peak_rss_mib']} / {i['peak_rss_mib']} / "
                f"{max(t['peak_rss_mib'], d['peak_rss_mib'])} MiB "
                f"| {e['foreign_cpu_s']} / {i['foreign_cpu_s']} / {t['foreign_cpu_s']} / "
                f"{d['foreign_cpu_s']} |"
            )
    lines += [
        "",
        "Distribution over the rounds: wall time and CPU seconds of each step, median "
        "(quartiles; min–max). `+ sync`: the durable baseline (coreutils `sync` of the "
        "bundle, or of the extracted files, inside its time). System CPU is mostly "
        "page-cache writes and pipes.",
        "",
        "| size | storage | step | wall time | CPU s | of which system (median) |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "tar_age": "tar\\|age",
        "age_tar_x": "age -d\\|tar -x",
        "tar_age_sync": "tar\\|age + sync",
        "age_tar_x_sync": "age -d\\|tar -x + sync",
        "fixed": "athar unlock only (fixed cost)",
        "cli_fixed": "`athar device id` (the commands' fixed cost)",
    }
    for r in result["runs"]:
        rows: list[tuple[str, dict[str, Any]]] = []
        for engine, g in r["engines"].items():
            label = ENGINE_NAMES.get(engine, engine)
            rows += [
                (f"athar export ({label})", g["export"]),
                (f"athar import ({label})", g["import"]),
            ]
        rows += [(label, r[key]) for key, label in names.items() if key in r]
        for label, x in rows:
            dist = x["distribution"]
            lines.append(
                f"| {r['size_mib']} MiB | {r['storage']} | {label} | {_q(dist['seconds'])} "
                f"| {_q(dist['cpu_s'], '')} | {x['sys_s']:.2f} |"
            )
    lines += [
        "",
        "Per-round ratios, median (quartiles; min–max): whole processes against the plain "
        "baseline (the goal's), against the durable baseline, the transfer alone, and CPU "
        "seconds.",
        "",
        "| size | storage | engine | rounds | ratio | to the durable baseline | transfer alone "
        "| CPU s ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        for engine, g in r["engines"].items():
            dist = g["distribution"]
            lines.append(
                f"| {r['size_mib']} MiB | {r['storage']} | {ENGINE_NAMES.get(engine, engine)} "
                f"| {r['repeat']} | **{_q(dist['ratio'], '×')}** "
                f"| {_q(dist['durable_ratio'], '×')} | {_q(dist['data_ratio'], '×')} "
                f"| {_q(dist['cpu_ratio'], '×')} |"
            )
    fixed = "; ".join(
        f"{f['seconds']:.2f} s and {f['cpu_s']:.2f} CPU s (during the {r['size_mib']} MiB runs)"
        for r in result["runs"]
        for f in [r["fixed"]]
    )
    cached = {r["bytecode_cached"] for r in result["runs"]}
    lines += [
        "",
        "Fixed cost of one athar process (interpreter start, imports, Argon2id unlock; "
        f"a process that only unlocks, timed alone): {fixed}; compiled modules "
        + ("cached, as in any installed copy." if cached == {True} else "not cached."),
    ]
    lines += [
        "",
        "Bytes on the wire over payload, 2 MB parts with 20% redundancy (goal ≤ n/k + 2%):",
        "",
        "| bundle | parts (n) | data parts (k) | wire / payload | n/k | excess |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        p = r["parts"]
        if p is None:
            lines.append(f"| {r['bundle_bytes']:,} B | not measured (`--skip-parts`) | | | | |")
            continue
        lines.append(
            f"| {r['bundle_bytes']:,} B | {p['n']} | {p['k']} | {p['wire_over_payload']} "
            f"| {p['n_over_k']} | {p['excess_percent']:+.3f} % |"
        )
    lines += [
        "",
        "Rerun: `python benchmarks/bench_bundle.py --doc` (sizes with `--sizes 256,1024`, "
        "in MiB; `--rounds 3`; `--engines program,pyrage`; `--workdir /dev/shm/athar-bench` "
        "for tmpfs; needs the Debian `age`, `tar` and coreutils `sync`, and about 6 × the "
        "largest size free in the work folder, in RAM for tmpfs).",
    ]
    return "\n".join(lines)


def child(action: str, vault: Path, target: Path, work: Path) -> None:
    """One side in its own process (for its peak RSS): unlock, then the timed transfer.
    The unlock (Argon2id, by design slow) and interpreter start are the fixed cost that
    the whole-process time includes and the data time leaves out."""
    with Vault.open(vault, PASSPHRASE) as v:
        started = time.perf_counter()
        if action == "export":
            service.export_bundle(v, ["office"], target)
        elif action == "import":
            service.import_bundles(v, [target])  # "unlock": the fixed cost alone
        work.write_text(str(time.perf_counter() - started))


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024", help="MiB, comma-separated")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument(
        "--rounds", "--repeat", dest="rounds", type=int, default=3, help="rounds per size"
    )
    parser.add_argument(
        "--engines",
        default="program,pyrage",
        help="program, pyrage (library calls in a child process) and/or cli (the `athar "
        "bundle export/import` commands as a user runs them, with the `age` program)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=WORK / "bundle",
        help="where the data, vaults and bundles live (a tmpfs path such as "
        "/dev/shm/athar-bench takes the disk out of both sides); deleted afterwards",
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before each step")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET_WAIT,
        help="at most this many seconds waiting for other jobs before each step",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the step order")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    parser.add_argument(
        "--skip-parts", action="store_true", help="leave out the wire overhead of parts"
    )
    parser.add_argument(
        "--old-code",
        type=Path,
        help="a folder holding an older copy of the `athar` package (e.g. `cp -r src/athar "
        "/tmp/old/` before a change): its export and import join the same rounds as the "
        "engine `old`, so before and after are compared inside each round",
    )
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args()
    if args.old_code is not None and not (args.old_code / "athar" / "__init__.py").is_file():
        sys.exit(f"benchmark: {args.old_code} holds no athar package")
    engines = [e for e in args.engines.split(",") if e]
    require_tools("age", "tar", "bash", "sync")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base: Path = args.workdir.resolve()
    if base == (WORK / "bundle").resolve():
        shutil.rmtree(base, ignore_errors=True)  # this script's own default folder
    if base.exists() and any(base.iterdir()):
        sys.exit(f"benchmark: {base} exists and is not empty; give a new or empty folder")
    base.mkdir(parents=True, exist_ok=True)
    check_room(base, 6 * max(sizes) * MIB + (1 << 30))
    result: dict[str, Any] = {"machine": machine(), "runs": []}
    try:
        for size in sizes:
            result["runs"].append(
                measure(
                    size,
                    args.files,
                    base,
                    engines,
                    args.rounds,
                    settle=args.settle,
                    quiet_wait=args.quiet_wait,
                    seed=args.seed + size,
                    bytecode=not args.no_bytecode_cache,
                    with_parts=not args.skip_parts,
                    old_code=args.old_code.resolve() if args.old_code is not None else None,
                )
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.doc:
        sys.stdout.write(doc(result) + "\n")
    else:
        emit(result)


if __name__ == "__main__":
    main()
