"""Bundles (issue 5): export+import against `tar | age` and `age -d | tar -x`.

For each size (default 256 MiB and 1 GiB of random files, 8 files each):
1. A sending vault holds the files (``athar add``, not timed) and the receiving vault
   is enrolled with it.
2. ``athar bundle export --to office`` and ``athar bundle import`` run as child
   processes: wall time and peak RSS (wait4) of each.
3. The baseline on the same plaintext files: ``tar -c | age -r RECIPIENT`` and
   ``age -d -i IDENTITY | tar -x`` (bash pipelines; wait4 of bash includes the peak RSS
   of tar and age, whichever is larger).
4. Parts: the exported bundle is cut into 2 MB parts with 20% redundancy; bytes of all
   parts over the bundle's size against n/k.

The ratio is (export + import) / (tar|age + age -d|tar -x). Athar does more work than the
baseline by design: it decrypts from its vault on the way out, and on the way in
re-encrypts every file under a fresh key into the receiving vault and checks every
SHA-256 and signature; the baseline writes plaintext to disk.

    python benchmarks/bench_bundle.py [--sizes 256,1024] [--files 8] [--doc]

Progress goes to stderr, one JSON document to stdout (markdown with --doc).
"""

from __future__ import annotations

import argparse
import os
import platform
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
    mib,
    require_tools,
    run_measured,
    wait_for_quiet,
)

MIB = 1 << 20
PART_SIZE = 2_000_000
REDUNDANCY = 0.2
QUIET_WAIT = 10.0  # the shared VM is rarely quiet; the noise is recorded instead


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


def run_tree(cmd: list[str]) -> Run:
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
        run = run_measured(cmd)
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


def measure(size_mib: int, count: int, base: Path) -> dict[str, Any]:
    total = size_mib * MIB
    log(f"{size_mib} MiB in {count} files: writing random data")
    data = base / "data"
    make_files(data, total, count)
    field, office = base / "field", base / "office"
    athar_init(field)
    athar_init(office)
    recipient = enrol_pair(field, office)
    log("  athar add (not timed)")
    added = run_measured([athar_bin(), "add", str(data), "--json"], env=athar_env(field))
    out = fresh(base / "bundle")

    wait_for_quiet(max_wait=QUIET_WAIT)
    log("  athar bundle export")
    work = base / "work.json"
    export = run_tree(
        [sys.executable, __file__, "--child", "export", str(field), str(out), str(work)]
    )
    export_work = float(work.read_text())
    (bundle_file,) = list(out.iterdir())
    bundle_bytes = bundle_file.stat().st_size
    wait_for_quiet(max_wait=QUIET_WAIT)
    log("  athar bundle import")
    imported = run_tree(
        [sys.executable, __file__, "--child", "import", str(office), str(bundle_file), str(work)]
    )
    import_work = float(work.read_text())

    ident = base / "office-age.txt"
    with Vault.open(office, PASSPHRASE) as b:
        ident.write_text(agekeys.identity_string(b.keys.identity.encryption_secret) + "\n")
    ident.chmod(0o600)
    age_file = base / "baseline.age"
    wait_for_quiet(max_wait=QUIET_WAIT)
    log("  tar | age -r")
    tar_age = run_tree(
        [
            "bash",
            "-c",
            'set -o pipefail; tar -cf - -C "$1" . | age -r "$2" > "$3"',
            "-",
            str(data),
            recipient,
            str(age_file),
        ]
    )
    dest = fresh(base / "extracted")
    wait_for_quiet(max_wait=QUIET_WAIT)
    log("  age -d | tar -x")
    age_tar = run_tree(
        [
            "bash",
            "-c",
            'set -o pipefail; age -d -i "$1" "$2" | tar -xf - -C "$3"',
            "-",
            str(ident),
            str(age_file),
            str(dest),
        ]
    )
    if sum(p.stat().st_size for p in dest.iterdir()) != total:
        raise RuntimeError("the baseline did not extract everything")

    log("  parts: 2 MB, 20% redundancy")
    cut = fresh(base / "parts")
    files = parts.split(bundle_file, cut, PART_SIZE, REDUNDANCY)
    groups = parts.plan_groups(max(1, -(-bundle_bytes // PART_SIZE)), REDUNDANCY)
    k = sum(g[0] for g in groups)
    n = sum(g[1] for g in groups)
    wire = sum(p.stat().st_size for p in files)
    for folder in (data, dest, cut, out):
        shutil.rmtree(folder)
    age_file.unlink()
    shutil.rmtree(field)
    shutil.rmtree(office)

    def side(run: Run, work: float | None = None) -> dict[str, Any]:
        return {
            "seconds": round(run.seconds, 2),
            "data_seconds": None if work is None else round(work, 2),
            "peak_rss_mib": mib(run.peak_rss_kib),
            "foreign_cpu_s": round(run.foreign_cpu_s, 1),
        }

    athar_s = export.seconds + imported.seconds
    base_s = tar_age.seconds + age_tar.seconds
    return {
        "size_mib": size_mib,
        "files": count,
        "add_seconds": round(added.seconds, 1),
        "bundle_bytes": bundle_bytes,
        "athar_export": side(export, export_work),
        "athar_import": side(imported, import_work),
        "tar_age": side(tar_age),
        "age_tar_x": side(age_tar),
        "ratio": round(athar_s / base_s, 3),
        "data_ratio": round((export_work + import_work) / base_s, 3),
        "export_ratio": round(export.seconds / tar_age.seconds, 3),
        "import_ratio": round(imported.seconds / age_tar.seconds, 3),
        "parts": {
            "part_size": PART_SIZE,
            "redundancy": REDUNDANCY,
            "k": k,
            "n": n,
            "files": len(files),
            "wire_bytes": wire,
            "wire_over_payload": round(wire / bundle_bytes, 4),
            "n_over_k": round(n / k, 4),
            "excess_percent": round(100 * (wire / bundle_bytes - n / k), 3),
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


def doc(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "## Bundles (issue 5)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, age {m['age']}; "
        f"load average {m['load_average_at_start']} at the start (the VM is shared with "
        "other jobs: the `foreign` column is CPU seconds other processes used during each "
        "step, so figures are noisy).",
        "",
        "Export+import of random files between two vaults, against `tar -c | age -r` and "
        "`age -d -i | tar -x` on the same files (the ratio's goal is ≤ 1.2×). Each athar "
        "side is its own process; its time includes the interpreter start and the "
        "vault unlock (Argon2id, slow on purpose), the time in brackets is the transfer "
        "alone:",
        "",
        "| size | athar export | athar import | tar\\|age | age -d\\|tar -x | ratio | "
        "peak RSS export / import / baseline | foreign CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        e, i, t, d = r["athar_export"], r["athar_import"], r["tar_age"], r["age_tar_x"]
        lines.append(
            f"| {r['size_mib']} MiB ({r['files']} files) | {e['seconds']} s "
            f"({e['data_seconds']} s) | {i['seconds']} s ({i['data_seconds']} s) "
            f"| {t['seconds']} s | {d['seconds']} s | **{r['ratio']}×** "
            f"({r['data_ratio']}× without the fixed cost; out {r['export_ratio']}×, "
            f"in {r['import_ratio']}×) "
            f"| {e['peak_rss_mib']} / {i['peak_rss_mib']} / "
            f"{max(t['peak_rss_mib'], d['peak_rss_mib'])} MiB "
            f"| {e['foreign_cpu_s']} / {i['foreign_cpu_s']} / {t['foreign_cpu_s']} / "
            f"{d['foreign_cpu_s']} |"
        )
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
        "in MiB; needs the Debian `age` and `tar`, and about 6 × the largest size free "
        "under benchmarks/work).",
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
        else:
            service.import_bundles(v, [target])
        work.write_text(str(time.perf_counter() - started))


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,1024", help="MiB, comma-separated")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args()
    require_tools("age", "tar", "bash")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    base = WORK / "bundle"
    check_disk(WORK, 6 * max(sizes) * MIB + (1 << 30))
    result: dict[str, Any] = {"machine": machine(), "runs": []}
    try:
        for size in sizes:
            result["runs"].append(measure(size, args.files, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.doc:
        sys.stdout.write(doc(result) + "\n")
    else:
        emit(result)


if __name__ == "__main__":
    main()
