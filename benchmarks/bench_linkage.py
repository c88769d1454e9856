"""Record linkage (issue 7): accuracy against two baselines, then speed at scale.

Accuracy (one run, same synthetic lists for all three rows, `athar.linkage.synth`):
1. exact matching on normalised names (`normalise_ar` of the whole name, one cluster
   per distinct form);
2. Splink with plain string comparisons: the name split on spaces by position,
   lower-cased, Jaro-Winkler 0.92 / 0.85 levels, the same other fields, EM-trained the
   same way;
3. this project's linkage (`athar.linkage.service.link_records`).
Pairwise and cluster precision, recall and F1 against the generator's truth.

Speed (`--scale N`): N people written as a CSV, then `athar link dedupe` run as a child
process end to end (read, features, training, scoring, clustering, writing): wall time
and peak RSS (wait4).

    python benchmarks/bench_linkage.py [--people 3000] [--level hard] [--scale 100000]
        [--spark 10000]

Spark (`--spark N`): N records linked by DuckDB, then scored by Spark with the model
DuckDB trained; the clusters and review queues compared record for record.

Progress goes to stderr, one JSON document to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from athar.linkage import model, synth
from athar.linkage.clusters import cluster
from athar.linkage.evaluate import evaluate_files, score
from athar.linkage.features import plain_table
from athar.linkage.lists import read_lists
from athar.linkage.names import normalise_ar
from athar.linkage.service import MATCH_AT, REVIEW_FROM, link_records


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def accuracy(people: int, level: str, seed: int, work: Path) -> dict[str, Any]:
    rows, truth = synth.generate(people, level, seed)  # type: ignore[arg-type]
    lists, _ = synth.write(rows, truth, work)
    loaded = read_lists([lists]).rows
    t = {rid: str(pid) for rid, pid in truth.items()}
    ids = [r.record_id for r in loaded]
    out: dict[str, Any] = {"people": people, "level": level, "records": len(loaded)}

    start = time.perf_counter()
    exact = {r.record_id: "x" + normalise_ar(r.name) for r in loaded}
    out["exact_normalised"] = {**score(exact, t).to_json(), "seconds": time.perf_counter() - start}
    log("exact", out["exact_normalised"])

    start = time.perf_counter()
    link = model.linker(plain_table(loaded), plain=True)
    model.train(link, len(loaded), plain=True)
    pairs = model.predict(link, 0.3)
    plain = cluster(ids, list(pairs.itertuples(index=False, name=None)), MATCH_AT)
    out["splink_plain"] = {
        **score(plain.cluster_of, t).to_json(),
        "seconds": time.perf_counter() - start,
    }
    log("plain", out["splink_plain"])

    start = time.perf_counter()
    result = link_records(loaded)
    out["athar"] = {
        **score(result.clustering.cluster_of, t).to_json(),
        "seconds": time.perf_counter() - start,
        "converged": result.parameters["run"]["converged"],
        "review_pairs": len(result.review),
    }
    log("athar", out["athar"])
    return out


def scale(
    people: int, seed: int, work: Path, match_at: float, review_from: float
) -> dict[str, Any]:
    rows, truth = synth.generate(people, "hard", seed)
    lists, truth_file = synth.write(rows, truth, work)
    del rows, truth
    out = work / "clusters.csv"
    cmd = [sys.executable, "-m", "athar", "link", "dedupe", str(lists), "--out", str(out), "--json"]
    cmd += ["--match-at", str(match_at), "--review-from", str(review_from)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stdout = proc.stdout.read() if proc.stdout else b""
    report = json.loads(stdout) if stdout.strip() else {}
    load = os.getloadavg()
    result: dict[str, Any] = {
        "people": people,
        "records": report.get("records"),
        "exit": os.waitstatus_to_exitcode(status),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "steps": report.get("seconds"),
        "clusters": report.get("clusters"),
        "load_average_1_5_15": [round(x, 1) for x in load],
    }
    params = out.with_name(out.name + ".json")
    if params.exists():
        run = json.loads(params.read_text(encoding="utf-8"))["run"]
        result["blocking_rules"] = len(run.get("blocking_rules", []))
        result["comparisons_at_most"] = run.get("comparisons_at_most")
        result["comparisons"] = run.get("comparisons")
        result["accuracy"] = evaluate_files(out, truth_file).to_json()
    return result


def spark_check(records: int, work: Path) -> dict[str, Any]:
    """DuckDB trains, Spark scores with the same model: the clusters and the review
    queue must be the same, record for record (as tests/test_linkage_spark.py at 2,000)."""
    rows, truth = synth.generate(records, "hard", seed=11)
    lists, _ = synth.write(rows[:records], truth, work)
    loaded = read_lists([lists]).rows
    start = time.perf_counter()
    duck = link_records(loaded)
    duck_seconds = time.perf_counter() - start
    start = time.perf_counter()
    spark = link_records(loaded, backend="spark", trained=duck.parameters["splink_model"])
    spark_seconds = time.perf_counter() - start
    a, b = duck.clustering.cluster_of, spark.clustering.cluster_of
    return {
        "records": len(loaded),
        "duckdb_seconds": round(duck_seconds, 1),
        "spark_seconds": round(spark_seconds, 1),
        "clusters": [duck.clusters, spark.clusters],
        "records_in_another_cluster": sum(1 for r in a if a[r] != b.get(r)),
        "same_clusters": a == b,
        "same_review_queue": {(p.left, p.right) for p in duck.review}
        == {(p.left, p.right) for p in spark.review},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--level", default="hard")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=int, default=0, help="also time N people end to end")
    parser.add_argument("--match-at", type=float, default=MATCH_AT, help="for --scale")
    parser.add_argument("--review-from", type=float, default=REVIEW_FROM, help="for --scale")
    parser.add_argument(
        "--spark", type=int, default=0, help="also check Spark against DuckDB on N records"
    )
    args = parser.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-linkage-") as tmp:
        work = Path(tmp)
        if args.people:
            result["accuracy"] = accuracy(args.people, args.level, args.seed, work / "acc")
        if args.scale:
            result["scale"] = scale(
                args.scale, args.seed, work / "scale", args.match_at, args.review_from
            )
            log("scale", result["scale"])
        if args.spark:
            result["spark"] = spark_check(args.spark, work / "spark")
            log("spark", result["spark"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
