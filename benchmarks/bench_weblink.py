"""Timing of the web's linkage pages on a synthetic vault (issue 7, weblink).

    /tmp/v/bin/python /tmp/helpers/weblink/bench_weblink.py --people 1000

Builds a vault whose person records are the generator's hard lists (`athar link synth`),
adds one missing-person report, then through the real app (in-process client, one
analyst): the background link run (reading, linking, explaining the queue), the first and
a later page of the queue, one decision, and a trace. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1] / "tests"  # from benchmarks/ in the repository
sys.path.insert(0, str(_TESTS))

from fastapi.testclient import TestClient  # noqa: E402

from athar.linkage.synth import generate  # noqa: E402
from athar.records.service import Records  # noqa: E402
from athar.vault.vault import Vault  # noqa: E402
from athar.web.accounts import Accounts  # noqa: E402
from athar.web.app import create_app  # noqa: E402
from athar.web.state import Settings  # noqa: E402
from test_web_fixtures import BASE, PASSPHRASE, PASSWORD, csrf_of, login  # noqa: E402

ARABIC = re.compile(r"[\u0600-\u06ff]")


def build(root: Path, people: int) -> tuple[Path, str, int]:
    rows, _ = generate(people, "hard", 7)
    vault_dir = root / "vault"
    with Vault.create(vault_dir, PASSPHRASE) as vault, Records(vault) as store:
        accounts = Accounts(vault_dir, vault.keys.subkey("web/accounts"))
        accounts.add("analyst", PASSWORD, "analyst", "en")
        accounts.close()
        first = None
        for row in rows:
            script = "name_ar" if ARABIC.search(row["full_name"]) else "name_latin"
            fields: dict[str, object] = {f"{script}.full": row["full_name"]}
            if row["father_name"]:
                fields[f"{script}.father"] = row["father_name"]
            if row["mother_name"]:
                fields[f"{script}.mother"] = row["mother_name"]
            if row["sex"]:
                fields["sex"] = {"m": "male", "f": "female"}[row["sex"]]
            if row["age"]:
                fields["age"] = int(row["age"])
            if row["birth_year"]:
                fields["birth_year"] = int(row["birth_year"])
            pid = store.create("person", fields)
            first = first or (pid, row)
            status: dict[str, object] = {
                "person": pid,
                "status": row["status"] or "killed",
            }
            if row["date"]:
                status["date"] = row["date"]
            if row["place"]:
                key = "place.name_ar" if ARABIC.search(row["place"]) else "place.name_latin"
                status[key] = row["place"]
            store.create("status", status)
        assert first is not None
        pid, row = first
        sought = store.create("person", {"name_ar.full": row["full_name"]})
        report = store.create(
            "missing",
            {
                "person": sought,
                "reporter.name": "أم محمد",
                "reporter.contact": "+963 900 000 000",
            },
        )
    return vault_dir, report, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1000)
    args = parser.parse_args()
    out: dict[str, object] = {"people": args.people}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        vault_dir, report, records = build(Path(tmp), args.people)
        out["records"] = records
        out["build_s"] = round(time.perf_counter() - t, 1)
        app = create_app(vault_dir, PASSPHRASE, Settings())
        with TestClient(app, base_url=BASE) as client:
            login(client, "analyst")
            t = time.perf_counter()
            client.get("/api/linkage/queue")
            while True:
                data = client.get("/api/linkage/queue").json()
                if data["working"] is None and data["run"]["state"] != "running":
                    break
                time.sleep(0.1)
            out["run_s"] = round(time.perf_counter() - t, 2)
            out["review_pairs"] = data["total"]
            out["people_found"] = data["run"].get("people")
            for page in (0, 5):
                t = time.perf_counter()
                html = client.get(f"/linkage?page={page}")
                out[f"queue_page_{page}_ms"] = round((time.perf_counter() - t) * 1000, 1)
                out[f"queue_page_{page}_kb"] = round(len(html.content) / 1024, 1)
            t = time.perf_counter()
            client.get("/linkage?page=0")
            out["queue_page_0_again_ms"] = round((time.perf_counter() - t) * 1000, 1)
            pair = data["pairs"][0]
            csrf = csrf_of(client.get("/account").text)
            t = time.perf_counter()
            client.post(
                "/linkage/decide",
                data={
                    "csrf": csrf,
                    "left": pair["left"],
                    "right": pair["right"],
                    "decision": "non_match",
                },
                follow_redirects=False,
            )
            out["decision_ms"] = round((time.perf_counter() - t) * 1000, 1)
            t = time.perf_counter()
            found = client.get(f"/api/trace/{report}").json()
            out["trace_s"] = round(time.perf_counter() - t, 2)
            out["trace_candidates"] = len(found.get("candidates", []))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
