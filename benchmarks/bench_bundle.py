"""Bundles (issue 5): export+import against `tar | age` and `age -d | tar -x`.

For each size (default 256 MiB and 1 GiB of random files, 8 files each):
1. A sending vault holds the files (``athar add``, not timed) and the receiving vault
   is enrolled with it.
2. Rounds (``--repeat``, default 3), each: for each age engine inside athar
   (``--engines``: the Debian ``age`` program in a child process, and pyrage in-process),
   ``athar bundle export`` and ``athar bundle import`` (into a fresh copy of the
   receiving vault) as child processes; then the baseline on the same plaintext files,
   ``tar -c | age -r RECIPIENT`` and ``age -d -i IDENTITY | tar -x`` (bash pipelines).
   Each step: wall time, CPU seconds (the child and what it waited for: age, tar), peak
   RSS of its process tree, and the CPU other processes used meanwhile (noise).
3. Parts: the exported bundle is cut into 2 MB parts with 20% redundancy; bytes of all
   parts over the bundle's size against n/k.

The ratio is (export + import) / (tar|age + age -d|tar -x), taken inside each round (the
machine's load drifts between rounds); the report gives each round's and the median.
"Transfer alone" leaves out the fixed cost of each athar process (interpreter start and
the Argon2id unlock). Athar does more work than the baseline by design: it decrypts from
its vault on the way out, and on the way in re-encrypts every file under a fresh key
into the receiving vault, checks every SHA-256 and signature and fsyncs before it
commits; the baseline writes plaintext to disk and never fsyncs.

    python benchmarks/bench_bundle.py [--sizes 256,1024] [--files 8] [--repeat 3]
                                      [--engines program,pyrage] [--doc]

Progress goes to stderr, one JSON document to stdout (markdown with --doc).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
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


def _cpu_children() -> float:
    me = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """run_tree, plus the CPU seconds of the child and everything it waited for (age).
    Afterwards, untimed, everything written is flushed (os.sync): a step that leaves
    a GiB of dirty pages (the baseline never fsyncs) would otherwise slow whichever
    step writes next, athar's or the baseline's."""
    before = _cpu_children()
    run = run_tree(cmd, env)
    os.sync()
    return {
        "seconds": run.seconds,
        "cpu_s": _cpu_children() - before,
        "peak_rss_kib": run.peak_rss_kib,
        "foreign_cpu_s": run.foreign_cpu_s,
    }


def measure(
    size_mib: int, count: int, base: Path, engines: list[str], repeat: int
) -> dict[str, Any]:
    total = size_mib * MIB
    log(f"{size_mib} MiB in {count} files: writing random data")
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
    rounds: list[dict[str, Any]] = []
    bundle_file = None
    for n in range(repeat):
        one: dict[str, Any] = {}
        for engine in engines:
            env = dict(os.environ, ATHAR_AGE_ENGINE="pyrage" if engine == "pyrage" else "")
            fresh(out)
            wait_for_quiet(max_wait=QUIET_WAIT)
            log(f"  [{n + 1}/{repeat}] athar bundle export ({engine})")
            cmd = [sys.executable, __file__, "--child", "export", str(field), str(out), str(work)]
            export = timed(cmd, env)
            export["data_seconds"] = float(work.read_text())
            (bundle_file,) = list(out.iterdir())
            shutil.rmtree(office, ignore_errors=True)
            shutil.copytree(office0, office)
            wait_for_quiet(max_wait=QUIET_WAIT)
            log(f"  [{n + 1}/{repeat}] athar bundle import ({engine})")
            cmd = [sys.executable, __file__, "--child", "import", str(office), str(bundle_file)]
            imported = timed([*cmd, str(work)], env)
            imported["data_seconds"] = float(work.read_text())
            one[engine] = {"export": export, "import": imported}
        wait_for_quiet(max_wait=QUIET_WAIT)
        log(f"  [{n + 1}/{repeat}] fixed cost: interpreter start and unlock alone")
        cmd = [sys.executable, __file__, "--child", "unlock", str(field), str(out), str(work)]
        one["fixed"] = timed(cmd)
        wait_for_quiet(max_wait=QUIET_WAIT)
        log(f"  [{n + 1}/{repeat}] tar | age -r")
        script = 'set -o pipefail; tar -cf - -C "$1" . | age -r "$2" > "$3"'
        one["tar_age"] = timed(["bash", "-c", script, "-", str(data), recipient, str(age_file)])
        fresh(dest)
        wait_for_quiet(max_wait=QUIET_WAIT)
        log(f"  [{n + 1}/{repeat}] age -d | tar -x")
        script = 'set -o pipefail; age -d -i "$1" "$2" | tar -xf - -C "$3"'
        one["age_tar_x"] = timed(["bash", "-c", script, "-", str(ident), str(age_file), str(dest)])
        if sum(p.stat().st_size for p in dest.iterdir()) != total:
            raise RuntimeError("the baseline did not extract everything")
        shutil.rmtree(dest)
        age_file.unlink()
        # The same baseline made as durable as athar's commit points: the bundle, then
        # the extracted files, fsynced before the step counts as done (coreutils sync
        # FILE... fsyncs those files). Reported beside the goal's plain baseline.
        wait_for_quiet(max_wait=QUIET_WAIT)
        log(f"  [{n + 1}/{repeat}] tar | age -r, then sync of the bundle")
        script = 'set -o pipefail; tar -cf - -C "$1" . | age -r "$2" > "$3" && sync "$3"'
        one["tar_age_sync"] = timed(
            ["bash", "-c", script, "-", str(data), recipient, str(age_file)]
        )
        fresh(dest)
        wait_for_quiet(max_wait=QUIET_WAIT)
        log(f"  [{n + 1}/{repeat}] age -d | tar -x, then sync of the files")
        script = 'set -o pipefail; age -d -i "$1" "$2" | tar -xf - -C "$3" && sync "$3"/* "$3"'
        one["age_tar_x_sync"] = timed(
            ["bash", "-c", script, "-", str(ident), str(age_file), str(dest)]
        )
        shutil.rmtree(dest)
        age_file.unlink()
        durable_s = one["tar_age_sync"]["seconds"] + one["age_tar_x_sync"]["seconds"]
        base_s = one["tar_age"]["seconds"] + one["age_tar_x"]["seconds"]
        base_cpu = one["tar_age"]["cpu_s"] + one["age_tar_x"]["cpu_s"]
        for engine in engines:
            e, i = one[engine]["export"], one[engine]["import"]
            one[engine]["ratio"] = (e["seconds"] + i["seconds"]) / base_s
            one[engine]["durable_ratio"] = (e["seconds"] + i["seconds"]) / durable_s
            one[engine]["data_ratio"] = (e["data_seconds"] + i["data_seconds"]) / base_s
            one[engine]["cpu_ratio"] = (e["cpu_s"] + i["cpu_s"]) / base_cpu
            fixed_cpu = 2 * one["fixed"]["cpu_s"]
            one[engine]["data_cpu_ratio"] = (e["cpu_s"] + i["cpu_s"] - fixed_cpu) / base_cpu
            one[engine]["export_ratio"] = e["seconds"] / one["tar_age"]["seconds"]
            one[engine]["import_ratio"] = i["seconds"] / one["age_tar_x"]["seconds"]
            log(
                f"    {engine}: ratio {one[engine]['ratio']:.2f} "
                f"(transfer alone {one[engine]['data_ratio']:.2f}, CPU "
                f"{one[engine]['cpu_ratio']:.2f}, CPU of the transfer alone "
                f"{one[engine]['data_cpu_ratio']:.2f})"
            )
        rounds.append(one)
    assert bundle_file is not None
    bundle_bytes = bundle_file.stat().st_size

    log("  parts: 2 MB, 20% redundancy")
    cut = fresh(base / "parts")
    files = parts.split(bundle_file, cut, PART_SIZE, REDUNDANCY)
    groups = parts.plan_groups(max(1, -(-bundle_bytes // PART_SIZE)), REDUNDANCY)
    k = sum(g[0] for g in groups)
    n_parts = sum(g[1] for g in groups)
    wire = sum(p.stat().st_size for p in files)
    for folder in (data, cut, out, field, office, office0):
        shutil.rmtree(folder, ignore_errors=True)

    def med(values: list[float]) -> float:
        return round(median(values), 3)

    def side(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seconds": med([r["seconds"] for r in runs]),
            "data_seconds": med([r["data_seconds"] for r in runs])
            if "data_seconds" in runs[0]
            else None,
            "cpu_s": med([r["cpu_s"] for r in runs]),
            "peak_rss_mib": mib(max(r["peak_rss_kib"] for r in runs)),
            "foreign_cpu_s": round(sum(r["foreign_cpu_s"] for r in runs) / len(runs), 1),
        }

    per_engine = {}
    for engine in engines:
        per_engine[engine] = {
            "export": side([r[engine]["export"] for r in rounds]),
            "import": side([r[engine]["import"] for r in rounds]),
            **{
                key: med([r[engine][key] for r in rounds])
                for key in (
                    "ratio",
                    "durable_ratio",
                    "data_ratio",
                    "cpu_ratio",
                    "data_cpu_ratio",
                    "export_ratio",
                    "import_ratio",
                )
            },
            "ratios": [round(r[engine]["ratio"], 3) for r in rounds],
            "durable_ratios": [round(r[engine]["durable_ratio"], 3) for r in rounds],
            "data_ratios": [round(r[engine]["data_ratio"], 3) for r in rounds],
        }
    return {
        "size_mib": size_mib,
        "files": count,
        "repeat": repeat,
        "add_seconds": round(added.seconds, 1),
        "bundle_bytes": bundle_bytes,
        "engines": per_engine,
        "fixed": side([r["fixed"] for r in rounds]),
        "tar_age": side([r["tar_age"] for r in rounds]),
        "age_tar_x": side([r["age_tar_x"] for r in rounds]),
        "tar_age_sync": side([r["tar_age_sync"] for r in rounds]),
        "age_tar_x_sync": side([r["age_tar_x_sync"] for r in rounds]),
        "parts": {
            "part_size": PART_SIZE,
            "redundancy": REDUNDANCY,
            "k": k,
            "n": n_parts,
            "files": len(files),
            "wire_bytes": wire,
            "wire_over_payload": round(wire / bundle_bytes, 4),
            "n_over_k": round(n_parts / k, 4),
            "excess_percent": round(100 * (wire / bundle_bytes - n_parts / k), 3),
        },
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


ENGINE_NAMES = {"program": "`age` program", "pyrage": "pyrage"}


def doc(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "## Bundles (issue 5)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, age {m['age']}; "
        f"load average {m['load_average_at_start']} at the start (the VM is shared with "
        "other jobs: the `foreign` column is CPU seconds other processes used during each "
        "step, so figures are noisy). Medians of the repeated rounds; each round runs "
        "athar and the baseline one after the other, and its ratio is taken inside it.",
        "",
        "Export+import of random files between two vaults, against `tar -c | age -r` and "
        "`age -d -i | tar -x` on the same files (the ratio's goal is ≤ 1.2×). Each athar "
        "side is its own process; its time includes the interpreter start and the "
        "vault unlock (Argon2id, slow on purpose), the time in brackets is the transfer "
        "alone. Engine: who runs age inside athar (the Debian `age` program in a child "
        "process, or pyrage in-process).",
        "",
        "| size | engine | athar export | athar import | tar\\|age | age -d\\|tar -x "
        "| ratio (each round) | transfer alone | CPU s athar / baseline "
        "| peak RSS export / import / baseline | foreign CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        t, d = r["tar_age"], r["age_tar_x"]
        for engine, g in r["engines"].items():
            e, i = g["export"], g["import"]
            rounds = ", ".join(f"{x:.2f}" for x in g["ratios"])
            lines.append(
                f"| {r['size_mib']} MiB ({r['files']} files) | {ENGINE_NAMES.get(engine, engine)} "
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
        "The same ratio against the baseline made as durable as athar (each baseline step "
        "followed by `sync` of what it wrote, inside its timing: athar fsyncs the bundle "
        "before renaming it into place and the vault's files before its commit point; the "
        "plain baseline leaves them in the page cache). Every step, athar's and the "
        "baseline's, is followed by an untimed `sync`, so none pays for another's "
        "writeback.",
        "",
        "| size | engine | tar\\|age + sync | age -d\\|tar -x + sync | ratio (each round) |",
        "|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        ts, ds = r["tar_age_sync"], r["age_tar_x_sync"]
        for engine, g in r["engines"].items():
            rounds = ", ".join(f"{x:.2f}" for x in g["durable_ratios"])
            lines.append(
                f"| {r['size_mib']} MiB | {ENGINE_NAMES.get(engine, engine)} "
                f"| {ts['seconds']:.2f} s | {ds['seconds']:.2f} s "
                f"| **{g['durable_ratio']:.2f}×** ({rounds}) |"
            )
    fixed = "; ".join(
        f"{f['seconds']:.2f} s and {f['cpu_s']:.2f} CPU s (during the {r['size_mib']} MiB runs)"
        for r in result["runs"]
        for f in [r["fixed"]]
    )
    lines += [
        "",
        "Fixed cost of one athar process (interpreter start, imports, Argon2id unlock; "
        f"a process that only unlocks, timed alone): {fixed}.",
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
        lines.append(
            f"| {r['bundle_bytes']:,} B | {p['n']} | {p['k']} | {p['wire_over_payload']} "
            f"| {p['n_over_k']} | {p['excess_percent']:+.3f} % |"
        )
    lines += [
        "",
        "Rerun: `python benchmarks/bench_bundle.py --doc` (sizes with `--sizes 256,1024`, "
        "in MiB; `--repeat 3`; `--engines program,pyrage`; needs the Debian `age` and "
        "`tar`, and about 6 × the largest size free under benchmarks/work).",
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
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (median)")
    parser.add_argument("--engines", default="program,pyrage", help="program and/or pyrage")
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    require_tools("age", "tar", "bash")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base = WORK / "bundle"
    check_disk(WORK, 6 * max(sizes) * MIB + (1 << 30))
    result: dict[str, Any] = {"machine": machine(), "runs": []}
    try:
        for size in sizes:
            result["runs"].append(measure(size, args.files, base, engines, args.repeat))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.doc:
        sys.stdout.write(doc(result) + "\n")
    else:
        emit(result)


if __name__ == "__main__":
    main()
