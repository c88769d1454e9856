"""`athar link dedupe / evaluate / synth`: standalone linkage of CSV lists, with the
issue's bad-input cases (empty names, a third script, every row the same person, 20% of
rows with only a name, Windows-1256, a reviewer decision against a cluster)."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from athar.linkage import synth
from athar.linkage.evaluate import score

HEADER = "record_id,source,full_name,father_name,mother_name,sex,age,date,place\n"
FAMILY = (
    "a1,vdc,محمد أحمد خالد الحلبي,,فاطمة,m,34,2016-03-24,حلب\n"
    "b1,snhr,Mohammad Ahmad Al-Halabi,,,m,35,2016-03-25,Aleppo\n"
    "c1,local,محمّد أحمد الحلبى,,,m,,2016-03-24,حلب\n"
    "a2,vdc,حسن أحمد خالد الحلبي,,فاطمة,m,30,2016-03-24,حلب\n"
    "a3,vdc,زينب علي حسين الزعبي,,,f,20,2014-01-02,درعا\n"
)


def _clusters(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as f:
        return {r["record_id"]: r["cluster_id"] for r in csv.DictReader(f)}


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _run(cli: Callable[..., Any], *args: str) -> Any:
    result = cli("link", "dedupe", *args, "--json")
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("synth")
    rows, truth = synth.generate(700, "easy", seed=3)
    return synth.write(rows, truth, out)


def test_small_list_links_spellings_and_keeps_brothers_apart(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    src = _write(tmp_path / "list.csv", HEADER + FAMILY)
    result, data = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 0, result.output
    c = _clusters(tmp_path / "c.csv")
    assert c["a1"] == c["b1"] == c["c1"]  # Arabic, Latin and diacritics: one person
    assert c["a2"] != c["a1"]  # his brother
    assert c["a3"] not in (c["a1"], c["a2"])
    assert data["clusters"] == 3
    params = json.loads((tmp_path / "c.csv.json").read_text(encoding="utf-8"))
    assert params["run"]["records"] == 5
    assert params["splink_model"]["comparisons"]


def test_synthetic_lists_evaluate_and_stable_ids(
    cli: Callable[..., Any], tmp_path: Path, lists: tuple[Path, Path]
) -> None:
    src, truth = lists
    out = tmp_path / "clusters.csv"
    result, data = _run(cli, str(src), "--out", str(out), "--review", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.output
    assert data["converged"] is True
    params = json.loads(out.with_name("clusters.csv.json").read_text(encoding="utf-8"))
    sessions = params["run"]["em_sessions"]
    assert len(sessions) >= 2 and all(s["iterations"] < 25 for s in sessions)
    ev = cli("link", "evaluate", str(out), "--truth", str(truth), "--json")
    scores = json.loads(ev.stdout)
    assert scores["pairwise_precision"] >= 0.92
    assert scores["pairwise_recall"] >= 0.85
    # Same rows in another order (and another file name): the same cluster ids.
    with src.open(encoding="utf-8") as f:
        lines = f.read().splitlines()
    body = lines[1:]
    random.Random(5).shuffle(body)
    shuffled = _write(tmp_path / "shuffled.csv", "\n".join([lines[0], *body]) + "\n")
    out2 = tmp_path / "clusters2.csv"
    result2, _ = _run(cli, str(shuffled), "--out", str(out2))
    assert result2.exit_code == 0
    first, second = _clusters(out), _clusters(out2)
    same = sum(first[r] == second[r] for r in first)
    assert same / len(first) >= 0.99  # EM on a sample: a borderline pair may move


def test_windows_1256_and_bom(cli: Callable[..., Any], tmp_path: Path) -> None:
    text = HEADER + FAMILY.replace("Mohammad Ahmad Al-Halabi", "محمد احمد الحلبي")
    a = _write(tmp_path / "cp.csv", text, "cp1256")
    b = _write(tmp_path / "bom.csv", "\ufeff" + text, "utf-8")
    ra, _ = _run(cli, str(a), "--out", str(tmp_path / "a.csv"))
    rb, _ = _run(cli, str(b), "--out", str(tmp_path / "b.csv"))
    assert ra.exit_code == rb.exit_code == 0, ra.output + rb.output
    assert _clusters(tmp_path / "a.csv") == _clusters(tmp_path / "b.csv")


def test_mixed_encodings_refused_and_nothing_written(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    out = _write(tmp_path / "c.csv", "earlier result\n")
    data = (
        HEADER.encode() + "a1,vdc,محمد الحلبي\n".encode() + "b1,snhr,محمد الحلبي\n".encode("cp1256")
    )
    src = tmp_path / "mixed.csv"
    src.write_bytes(data)
    result, body = _run(cli, str(src), "--out", str(out))
    assert result.exit_code == 2
    assert "mixes encodings" in body["error"]
    assert out.read_text() == "earlier result\n"


def test_empty_names_are_refused_with_lines(cli: Callable[..., Any], tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", HEADER + FAMILY + "z1,vdc,,,,m,3,,\nz2,vdc,  ---  ,,,,,,\n")
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 2
    assert "l.csv:7: the name is empty" in body["error"]
    assert "l.csv:8: the name is empty" in body["error"]
    assert not (tmp_path / "c.csv").exists()


def test_bad_columns_and_values(cli: Callable[..., Any], tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", "record_id,full_name,shoe_size\na,محمد,42\n")
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 2 and "shoe_size" in body["error"]
    src = _write(tmp_path / "l.csv", HEADER + "a,vdc,محمد الحلبي,,,m,ثلاثون,,\na,vdc,علي,,,,,,\n")
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 2
    assert "age, birth_year or date cannot be read" in body["error"]
    assert "record_id a also at" in body["error"]


def test_third_script_is_noted_and_compared_as_written(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    rows = (
        FAMILY
        + "r1,ru,Мухаммад Ахмад,,,m,34,2016-03-24,\nr2,ru,Мухаммад Ахмад,,,m,34,2016-03-24,\n"
    )
    src = _write(tmp_path / "l.csv", HEADER + rows)
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 0
    assert any("neither Arabic nor Latin" in n for n in body["notes"])
    c = _clusters(tmp_path / "c.csv")
    assert c["r1"] == c["r2"] and c["r1"] != c["a1"]


def test_every_row_the_same_person(cli: Callable[..., Any], tmp_path: Path) -> None:
    spellings = [
        "محمد أحمد الحلبي",
        "محمّد احمد الحلبى",
        "Mohammad Ahmad Al-Halabi",
        "Muhammad Ahmed Halabi",
        "محمد أحمد حلبي",
    ]
    rows = "".join(
        f"s{i},src{i % 4},{spellings[i % len(spellings)]},,,m,34,2016-03-24,حلب\n"
        for i in range(300)
    )
    src = _write(tmp_path / "l.csv", HEADER + rows)
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 0, result.output
    assert body["clusters"] == 1
    assert len(set(_clusters(tmp_path / "c.csv").values())) == 1


def test_twenty_percent_rows_with_only_a_name(
    cli: Callable[..., Any], tmp_path: Path, lists: tuple[Path, Path]
) -> None:
    src, truth = lists
    with src.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    rng = random.Random(2)
    for row in rng.sample(rows, len(rows) // 5):
        for k in fields:
            if k not in ("record_id", "source", "full_name"):
                row[k] = ""
    thin = tmp_path / "thin.csv"
    with thin.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    result, _ = _run(cli, str(thin), "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 0
    with truth.open(encoding="utf-8") as f:
        t = {r["record_id"]: r["person_id"] for r in csv.DictReader(f)}
    s = score(_clusters(tmp_path / "c.csv"), t)
    assert s.pairwise_precision >= 0.9  # name-only rows must not glue namesakes together


def test_reviewer_decisions_split_and_join(cli: Callable[..., Any], tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", HEADER + FAMILY)
    decisions = _write(
        tmp_path / "d.csv",
        "left,right,decision\na1,b1,non-match\nc1,b1,non-match\na3,a2,match\nx,y,\n",
    )
    result, body = _run(
        cli, str(src), "--out", str(tmp_path / "c.csv"), "--decisions", str(decisions)
    )
    assert result.exit_code == 0, result.output
    c = _clusters(tmp_path / "c.csv")
    assert c["a1"] != c["b1"]  # the reviewer split the cluster the model made
    assert c["c1"] != c["b1"]
    assert c["a3"] == c["a2"]  # and joined two records it kept apart
    conflicting = _write(tmp_path / "bad.csv", "left,right,decision\na1,b1,match\nb1,a1,no\n")
    result, body = _run(
        cli, str(src), "--out", str(tmp_path / "c.csv"), "--decisions", str(conflicting)
    )
    assert result.exit_code == 2 and "decided both ways" in body["error"]
    wrong = _write(tmp_path / "bad2.csv", "left,right,decision\na1,b1,perhaps\n")
    result, body = _run(cli, str(src), "--out", str(tmp_path / "c.csv"), "--decisions", str(wrong))
    assert result.exit_code == 2 and "perhaps" in body["error"]


def test_review_queue_can_be_filled_in_and_given_back(
    cli: Callable[..., Any], tmp_path: Path, lists: tuple[Path, Path]
) -> None:
    src, _ = lists
    review = tmp_path / "review.csv"
    result, _ = _run(
        cli,
        str(src),
        "--out",
        str(tmp_path / "c.csv"),
        "--review",
        str(review),
        "--review-from",
        "0.05",
    )
    assert result.exit_code == 0
    with review.open(encoding="utf-8") as f:
        queue = list(csv.DictReader(f))
    assert queue and {"left", "right", "match_probability", "decision"} <= set(queue[0])
    first = queue[0]
    filled = tmp_path / "filled.csv"
    with filled.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(queue[0]))
        w.writeheader()
        w.writerow({**first, "decision": "match"})
    result, _ = _run(
        cli,
        str(src),
        "--out",
        str(tmp_path / "c2.csv"),
        "--decisions",
        str(filled),
        "--review",
        str(tmp_path / "r2.csv"),
        "--review-from",
        "0.05",
    )
    c = _clusters(tmp_path / "c2.csv")
    assert c[first["left"]] == c[first["right"]]
    with (tmp_path / "r2.csv").open(encoding="utf-8") as f:
        again = {(r["left"], r["right"]) for r in csv.DictReader(f)}
    assert (first["left"], first["right"]) not in again  # decided: not asked twice


def test_synth_command_and_evaluate_errors(cli: Callable[..., Any], tmp_path: Path) -> None:
    result = cli("link", "synth", str(tmp_path / "s"), "--people", "50", "--json")
    assert result.exit_code == 0
    written = json.loads(result.stdout)
    assert written["rows"] >= 50
    text = (tmp_path / "s" / "lists.csv").read_text(encoding="utf-8")
    assert any("\u0600" <= ch <= "\u06ff" for ch in text)
    bad = _write(tmp_path / "c.csv", "record_id,cluster_id\nnot-in-truth,c1\n")
    result = cli(
        "link", "evaluate", str(bad), "--truth", str(tmp_path / "s" / "truth.csv"), "--json"
    )
    assert result.exit_code == 2
    assert "not in the truth file" in json.loads(result.stdout)["error"]
    result = cli(
        "link",
        "dedupe",
        str(tmp_path / "s" / "lists.csv"),
        "--out",
        str(tmp_path / "o.csv"),
        "--backend",
        "oracle",
        "--json",
    )
    assert result.exit_code == 2
