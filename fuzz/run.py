"""A bounded fuzzing campaign over every parser of outside input.

    python fuzz/run.py --minutes 10 [--target csv-import ...] [--out fuzz/out]

Each target gets an equal share of the time. Inputs are random byte strings that
hypothesis turns into structured values (its `fuzz_one_input` entry point, the one
atheris drives), so the same targets serve a coverage-guided fuzzer:

    python fuzz/run.py --atheris --target event-entry   (needs `pip install atheris`)

Writes OUT/stats.json (inputs tried and crashes per target) and, for each distinct crash,
OUT/crashes/<target>-<n>.txt (exception, traceback, the input) and .bin (the buffer,
replayable with --replay).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_targets import Target, targets


def harness(target: Target, seen: list[Any]) -> Any:
    @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def one(value: Any) -> None:
        seen[0] = value
        target.check(value)

    return one.hypothesis.fuzz_one_input  # type: ignore[attr-defined]


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f"{type(exc).__name__} at {last.filename}:{last.lineno}" if last else type(exc).__name__


def campaign(
    names: list[str], seconds: float, out: Path, seed: int = 0, max_len: int = 4096
) -> dict[str, Any]:
    warnings.simplefilter("ignore")  # Pillow warns about every damaged header it reads
    rng = random.Random(seed)  # noqa: S311 (reproducible inputs, not secrets)
    chosen = [targets()[n] for n in names]
    (out / "crashes").mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"seconds": seconds, "seed": seed, "targets": {}}
    for target in chosen:
        seen: list[Any] = [None]
        feed = harness(target, seen)
        tried, crashes, kinds = 0, 0, {}
        stop = time.monotonic() + seconds / len(chosen)
        while time.monotonic() < stop:
            buffer = rng.randbytes(rng.randrange(max_len))
            tried += 1
            try:
                feed(buffer)
            except Exception as exc:  # a crash: record each distinct one once
                crashes += 1
                where = _where(exc)
                if where not in kinds:
                    kinds[where] = 1
                    stem = out / "crashes" / f"{target.name}-{len(kinds)}"
                    stem.with_suffix(".bin").write_bytes(buffer)
                    stem.with_suffix(".txt").write_text(
                        f"{where}\n{exc!r}\n\ninput: {seen[0]!r}\n\n"
                        + "".join(traceback.format_exception(exc)),
                        encoding="utf-8",
                    )
                else:
                    kinds[where] += 1
        stats["targets"][target.name] = {"inputs": tried, "crashes": crashes, "distinct": kinds}
        print(f"{target.name:16} {tried:8} inputs  {crashes:5} crashes  {len(kinds)} distinct")
    (out / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, help="overrides --minutes")
    parser.add_argument("--target", action="append", help="default: all")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=Path, help="a crash .bin to feed again")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided (one target)")
    args = parser.parse_args()
    names = args.target or sorted(targets())
    unknown = set(names) - set(targets())
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; known: {sorted(targets())}")
    if args.replay:
        harness(targets()[names[0]], [None])(args.replay.read_bytes())
        print("no crash")
        return 0
    if args.atheris:
        import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]  # optional

        atheris.Setup([sys.argv[0]], harness(targets()[names[0]], [None]))
        atheris.Fuzz()
        return 0
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    stats = campaign(names, seconds, args.out, args.seed)
    return 1 if any(t["crashes"] for t in stats["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
