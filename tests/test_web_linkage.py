"""The linkage review queue and family tracing in the web app: the queue of a run over a
small vault where the same people are spelled in Arabic and Latin letters, decisions made
in the browser that the next run obeys, who may do what, tracing that ranks the right
person first and never shows or logs who is searching, and a look in Chromium."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from athar.linkage import trace
from athar.records.service import Records
from athar.vault.vault import Vault
from athar.web.app import create_app
from athar.web.state import Settings
from test_web_fixtures import BASE, PASSPHRASE, build_world, csrf_of, live_server, login

REPORTER = "أم خالد الحلبية"
CONTACT = "+963 944 123 456"
CIRCUMSTANCES = "اتصلوا بالرقم ٠٩٤٤١٢٣٤٥٦ عند أي خبر"

PEOPLE = [
    # (Arabic full name, Latin full name, sex, age, status, date, place)
    (
        "محمد أحمد خالد الحلبي",
        "Mohammad Ahmad Khaled al-Halabi",
        "male",
        34,
        "killed",
        "2016-03-24",
        "حلب",
    ),
    (None, "Mohammad Ahmad Al-Halabi", "male", 35, "killed", "2016-03-25", "حلب"),
    ("محمّد احمد الحلبى", None, "male", None, "detained", "2015-01-10", "حلب"),
    ("حسن أحمد خالد الحلبي", "Hasan Ahmad al-Halabi", "male", 30, "killed", "2016-03-24", "حلب"),
    ("زينب علي حسين الزعبي", None, "female", 20, "killed", "2014-01-02", "درعا"),
    (None, "Zainab Ali Zoubi", "female", None, "detained", "2013-06-01", "Daraa"),
    ("عمر سعيد الحموي", None, "male", 41, "displaced", "2013-05-05", "حماة"),
    (None, "Omar Hamwi", "male", None, "killed", "2015-02-02", "Homs"),
    # one woman, by her kunya in one list and her name in another: only a reviewer who
    # knows the family can join them
    ("أم أحمد الزعبي", None, "female", None, "killed", "2014-01-02", "درعا"),
    (None, "Fatima Zoubi", "female", 45, "killed", "2014-01-03", "Daraa"),
]


@dataclass
class Linked:
    vault_dir: Path
    people: list[str]
    latin_only: set[str]
    sought: str
    report: str


def _populate(vault_dir: Path) -> Linked:
    with Vault.open(vault_dir, PASSPHRASE) as vault, Records(vault) as store:
        ids, latin_only = [], set()
        for ar, latin, sex, age, status, date, place in PEOPLE:
            fields: dict[str, Any] = {"sex": sex}
            if ar:
                fields["name_ar.full"] = ar
            if latin:
                fields["name_latin.full"] = latin
            if age is not None:
                fields["age"] = age
            pid = store.create("person", fields, "documenter")
            store.create(
                "status",
                {"person": pid, "status": status, "date": date, "place.name_ar": place},
                "documenter",
            )
            ids.append(pid)
            if not ar:
                latin_only.add(pid)
        sought = store.create(
            "person", {"name_ar.full": "محمد احمد الحلبي", "sex": "male", "age": 34}, "documenter"
        )
        store.create("status", {"person": sought, "status": "missing"}, "documenter")
        report = store.create(
            "missing",
            {
                "person": sought,
                "reporter.name": REPORTER,
                "reporter.contact": CONTACT,
                "reporter.relationship": "mother",
                "last_seen.date": "2016-03-20",
                "last_seen.place.name_ar": "حلب",
                "circumstances": CIRCUMSTANCES,
            },
            "documenter",
        )
    return Linked(vault_dir, ids, latin_only, sought, report)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Linked:
    world = build_world(tmp_path_factory.mktemp("weblink"))
    return _populate(world.vault_dir)


@pytest.fixture(scope="module")
def app(linked: Linked) -> Iterator[TestClient]:
    with TestClient(create_app(linked.vault_dir, PASSPHRASE, Settings()), base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def users(app: TestClient) -> dict[str, TestClient]:
    return {
        role: login(TestClient(app.app, base_url=BASE), role)
        for role in ("admin", "analyst", "verifier", "documenter", "viewer")
    }


def _settled(client: TestClient) -> dict[str, Any]:
    """The queue once no run is working (the first call starts one)."""
    deadline = time.monotonic() + 120
    while True:
        data: dict[str, Any] = client.get("/api/linkage/queue").json()
        if data["working"] is None and data["run"]["state"] != "running":
            assert data["failed"] is None, data["failed"]
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.2)


def _together(data: dict[str, Any], a: str, b: str) -> bool:
    return any(a in ids and b in ids for ids in data["run"]["linked"].values())


def _pairs(data: dict[str, Any]) -> set[frozenset[str]]:
    return {frozenset((p["left"], p["right"])) for p in data["pairs"]}


def _events(app: TestClient) -> int:
    state = app.app.state.athar  # type: ignore[attr-defined]
    size: int = state.worker.call(state.vault.ledger.size)
    return size


def _new_run(client: TestClient) -> dict[str, Any]:
    page = client.get("/linkage")
    response = client.post(
        "/linkage/run", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    return _settled(client)


def test_queue_shows_uncertain_pairs_side_by_side(
    users: dict[str, TestClient], linked: Linked
) -> None:
    analyst = users["analyst"]
    data = _settled(analyst)
    assert data["run"]["state"] == "done", data["run"]
    ids = linked.people
    assert _together(data, ids[0], ids[1])  # محمد … الحلبي / Mohammad … Al-Halabi
    pairs = _pairs(data)
    assert frozenset((ids[0], ids[3])) in pairs  # brothers: never joined without a reviewer
    # an Arabic record and a Latin-only one, in the uncertain band
    assert any(pair & linked.latin_only and pair - linked.latin_only for pair in pairs)
    assert all(0.0 < p["match_probability"] <= 1.0 for p in data["pairs"])
    brothers = next(p for p in data["pairs"] if {p["left"], p["right"]} == {ids[0], ids[3]})
    levels = {c["comparison"]: c["level"] for c in brothers["comparisons"]}
    assert levels["given"] == "disagree"  # محمد / حسن
    assert levels["family"] == "agree" and levels["father"] == "agree"
    assert brothers["reasons"]
    assert {p["id"] for p in brothers["people"]} == {ids[0], ids[3]}

    page = analyst.get("/linkage")
    assert page.status_code == 200
    html = page.text
    for text in ("محمد أحمد خالد الحلبي", "حسن أحمد خالد الحلبي", "Hasan Ahmad al-Halabi"):
        assert text in html
    assert f'data-left="{brothers["left"]}" data-right="{brothers["right"]}"' in html
    assert 'data-comparison="given" data-level="disagree"' in html
    assert 'name="decision" value="non_match"' in html
    assert 'id="start-run"' in html  # analysts may start a run
    assert REPORTER not in html and CONTACT not in html

    arabic = users["verifier"]
    csrf = csrf_of(arabic.get("/linkage").text)
    arabic.post("/prefs", data={"lang": "ar", "csrf": csrf, "back": "/linkage"})
    page_ar = arabic.get("/linkage").text
    assert 'dir="rtl"' in page_ar
    assert "اسم الأب" in page_ar and "الاسم: " in page_ar  # labels and levels in Arabic
    assert 'id="start-run"' not in page_ar  # a verifier decides but does not start runs


def test_a_decision_made_in_the_web_is_respected_by_the_next_run(
    users: dict[str, TestClient], linked: Linked, app: TestClient
) -> None:
    analyst = users["analyst"]
    ids = linked.people
    before = _settled(analyst)
    assert _together(before, ids[0], ids[1])
    size = _events(app)
    page = analyst.get("/linkage").text
    response = analyst.post(
        "/linkage/decide",
        data={
            "csrf": csrf_of(page),
            "left": ids[1],
            "right": ids[0],
            "decision": "non_match",
            "note": "الأب مختلف في سجل الأحوال",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert _events(app) == size + 1
    state = app.app.state.athar  # type: ignore[attr-defined]
    last = state.worker.call(lambda: state.vault.ledger.event_at(size))
    assert last.event.kind == "linkage.decision" and last.signature_valid()
    assert last.event.body["decision"] == "non_match"
    assert {last.event.body["left"], last.event.body["right"]} == {ids[0], ids[1]}
    # the acting account, by its pseudonymous id: never the user name
    assert last.event.body["user"] == state.accounts.account_of("analyst")
    assert "analyst" not in last.event.body["user"]

    # a match the model could not make (a kunya and a name), through the JSON twin
    assert not _together(before, ids[8], ids[9])
    target = {"left": ids[9], "right": ids[8]}
    answer = users["verifier"].post(
        "/api/linkage/decisions",
        json={"left": target["left"], "right": target["right"], "decision": "match"},
        headers={"x-csrf-token": csrf_of(users["verifier"].get("/linkage").text)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "match"
    # a decided pair leaves the queue at once, before any new run
    brothers = frozenset((ids[0], ids[3]))
    assert brothers in _pairs(analyst.get("/api/linkage/queue").json())
    response = analyst.post(
        "/linkage/decide",
        data={"csrf": csrf_of(page), "left": ids[0], "right": ids[3], "decision": "non_match"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert brothers not in _pairs(analyst.get("/api/linkage/queue").json())

    after = _new_run(analyst)
    assert after["run"]["run"] > before["run"]["run"]
    assert after["run"]["decisions"] >= 3
    assert not _together(after, ids[0], ids[1])  # the cluster was split
    assert _together(after, target["left"], target["right"])  # and these merged
    assert frozenset((ids[0], ids[1])) not in _pairs(after)
    listed = analyst.get("/api/linkage/decisions").json()["decisions"]
    assert {
        "left": min(ids[0], ids[1]),
        "right": max(ids[0], ids[1]),
        "decision": "non_match",
    } in listed


def test_bad_decisions_are_refused_and_write_nothing(
    users: dict[str, TestClient], linked: Linked, app: TestClient
) -> None:
    client = users["admin"]
    ids = linked.people
    csrf = csrf_of(client.get("/linkage").text)
    size = _events(app)
    for left, right, decision in (
        (ids[0], ids[0], "match"),  # the same record twice
        (ids[0], "per-doesnotexist0", "match"),  # no such record
        (ids[0], linked.report, "match"),  # not a person
        (ids[0], ids[4], "perhaps"),  # no such decision
        ("", ids[4], "match"),
    ):
        response = client.post(
            "/linkage/decide",
            data={"csrf": csrf, "left": left, "right": right, "decision": decision},
            follow_redirects=False,
        )
        assert response.status_code == 400, (left, right, decision)
        api = client.post(
            "/api/linkage/decisions",
            json={"left": left, "right": right, "decision": decision},
            headers={"x-csrf-token": csrf},
        )
        assert api.status_code == 400 and api.json()["ok"] is False
    without_csrf = client.post(
        "/linkage/decide",
        data={"left": ids[0], "right": ids[4], "decision": "match"},
        follow_redirects=False,
    )
    assert without_csrf.status_code == 403
    queue = _settled(client)["pairs"]
    assert len(queue) >= 2
    first = queue[0]
    skip = client.post(
        "/linkage/decide",
        data={"csrf": csrf, "left": first["left"], "right": first["right"], "decision": "skip"},
        follow_redirects=False,
    )
    assert skip.status_code == 303
    assert _events(app) == size  # nothing was written
    after = _settled(client)["pairs"]
    assert (after[-1]["left"], after[-1]["right"]) == (first["left"], first["right"])
    assert after[-1]["skipped"] and not after[0]["skipped"]
    # another reviewer's queue is not reordered
    other = users["analyst"].get("/api/linkage/queue").json()["pairs"][0]
    assert (other["left"], other["right"]) == (first["left"], first["right"])


def test_roles(users: dict[str, TestClient], linked: Linked) -> None:
    for role in ("viewer", "documenter"):
        client = users[role]
        assert client.get("/linkage", follow_redirects=False).status_code == 403
        assert client.get("/api/linkage/queue").status_code == 403
        assert client.get("/api/linkage/decisions").status_code == 403
        csrf = csrf_of(client.get("/account").text)
        assert (
            client.post("/linkage/run", data={"csrf": csrf}, follow_redirects=False).status_code
            == 403
        )
    assert users["viewer"].get("/trace").status_code == 403
    assert users["viewer"].get(f"/api/trace/{linked.report}").status_code == 403
    assert users["documenter"].get("/trace").status_code == 200
    verifier = users["verifier"]
    csrf = csrf_of(verifier.get("/linkage").text)
    assert (
        verifier.post("/linkage/run", data={"csrf": csrf}, follow_redirects=False).status_code
        == 403
    )
    assert 'href="/linkage"' not in users["documenter"].get("/").text
    assert 'href="/trace"' in users["documenter"].get("/").text
    assert 'href="/linkage"' in verifier.get("/").text
    state = users["admin"].app.state.athar  # type: ignore[attr-defined]
    token = state.accounts.new_token("viewer", "script")
    anon = TestClient(users["admin"].app, base_url=BASE)
    assert anon.get("/api/linkage/queue").status_code == 401
    bearer = {"authorization": f"Bearer {token}"}
    assert anon.get("/api/linkage/queue", headers=bearer).status_code == 403
    analyst_token = state.accounts.new_token("analyst", "script")
    answer = anon.get("/api/linkage/queue", headers={"authorization": f"Bearer {analyst_token}"})
    assert answer.status_code == 200 and "pairs" in answer.json()


def test_trace_ranks_the_right_person_first_and_hides_the_searcher(
    users: dict[str, TestClient], linked: Linked, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = users["documenter"]
    chooser = client.get("/trace")
    assert chooser.status_code == 200
    assert f'value="{linked.report}"' in chooser.text
    assert "محمد احمد الحلبي" in chooser.text  # the person sought names the report
    page = client.get(f"/trace?report={linked.report}")
    assert page.status_code == 200, page.text[:500]
    report_page = client.get(f"/r/{linked.report}").text  # the report links to its trace
    assert f'href="/trace?report={linked.report}"' in report_page
    assert 'id="trace"' not in users["viewer"].get(f"/r/{linked.report}").text
    api = client.get(f"/api/trace/{linked.report}")
    assert api.status_code == 200
    found = api.json()["candidates"]
    assert found and found[0]["record_id"] in linked.people[:3]
    assert found[0]["match_probability"] > 0.5
    assert "given name" in found[0]["agreed"]
    assert linked.sought not in {c["record_id"] for c in found}
    rows = page.text.split('<tr data-record="')[1:]
    assert rows and rows[0].startswith(found[0]["record_id"])
    assert f'href="/r/{found[0]["record_id"]}"' in page.text
    assert linked.people[6] not in page.text  # عمر الحموي is nobody's match here
    arabic = users["analyst"]
    csrf = csrf_of(arabic.get("/trace").text)
    arabic.post("/prefs", data={"lang": "ar", "csrf": csrf, "back": "/trace"})
    page_ar = arabic.get(f"/trace?report={linked.report}").text
    assert 'dir="rtl"' in page_ar and "الاسم" in page_ar
    for text in (chooser.text, page.text, api.text, page_ar, caplog.text):
        assert REPORTER not in text and CONTACT not in text
        assert "خالد الحلبية" not in text and "944" not in text
        assert CIRCUMSTANCES not in text
    wrong = client.get(f"/trace?report={linked.people[0]}")
    assert wrong.status_code == 400 and "not a missing-person report" in wrong.text
    assert client.get("/api/trace/mis-doesnotexist").status_code == 400


def test_other_pages_answer_while_a_trace_ranks(
    users: dict[str, TestClient], linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trace trains a model for seconds; it must not hold the vault's thread, or every
    page of every user waits for it."""
    ranking, release = threading.Event(), threading.Event()
    real_rank = trace.rank

    def slow_rank(*args: Any, **kwargs: Any) -> Any:
        ranking.set()
        assert release.wait(30)
        return real_rank(*args, **kwargs)

    monkeypatch.setattr(trace, "rank", slow_rank)
    answer: dict[str, Any] = {}
    tracer = threading.Thread(
        target=lambda: answer.update(r=users["documenter"].get(f"/api/trace/{linked.report}"))
    )
    tracer.start()
    try:
        assert ranking.wait(30)
        started = time.monotonic()
        page = users["analyst"].get(f"/r/{linked.people[0]}")  # reads the vault
        assert page.status_code == 200 and time.monotonic() - started < 10
        assert "r" not in answer  # the trace is still ranking meanwhile
    finally:
        release.set()
        tracer.join(60)
    assert answer["r"].status_code == 200 and answer["r"].json()["candidates"]


# --------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def server(app: TestClient, linked: Linked) -> Iterator[tuple[str, Linked]]:
    """The same app (and vault, and run) served over loopback HTTP for the browser."""

    with live_server(app.app, lifespan="off") as base:
        yield base, linked


def test_review_and_trace_in_chromium(server: tuple[str, Linked]) -> None:
    from test_web_e2e import ARGS, CHROMIUM, SHOTS, _axe, _need_browser, log_in

    sync_playwright = _need_browser()
    base, data = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="ar")
        page = context.new_page()
        page.set_default_timeout(30000)
        page.goto(base + "/login")
        log_in(page, base, "analyst")
        if page.locator("html").get_attribute("lang") != "ar":  # chosen earlier, or now
            page.click("button[name=lang][value=ar]")
            page.wait_for_load_state()
        page.goto(base + "/linkage")
        # the first visit starts a run; the page reloads itself until it ends
        page.wait_for_selector("#run-summary", timeout=120000)
        assert page.locator("html").get_attribute("dir") == "rtl"
        cards = page.locator("article.pair")
        assert cards.count() >= 1
        page.screenshot(path=str(SHOTS / "linkage-ar.png"))  # the first pairs
        _axe(page, "linkage", problems)
        first = cards.first
        left, right = first.get_attribute("data-left"), first.get_attribute("data-right")
        first.locator("button.non-match").click()
        page.wait_for_load_state()
        assert page.locator(f'article.pair[data-left="{left}"][data-right="{right}"]').count() == 0
        page.goto(base + "/trace")
        page.select_option("#report", data.report)
        page.click("#trace-go")
        page.wait_for_selector("#candidates tbody tr[data-record]")
        assert (
            page.locator("#candidates tbody tr").first.get_attribute("data-record")
            in data.people[:3]
        )
        html = page.content()
        assert REPORTER not in html and CONTACT not in html
        page.screenshot(path=str(SHOTS / "trace-ar.png"), full_page=True)
        _axe(page, "trace", problems)
        browser.close()
    assert problems == []


def test_a_run_with_nobody_to_link_says_so(tmp_path: Path) -> None:
    from athar.web import linkview
    from athar.web.locale import Speaker
    from athar.web.state import State

    Vault.create(tmp_path / "empty", PASSPHRASE).close()
    state = State(tmp_path / "empty", PASSPHRASE, Settings())
    try:
        runs = linkview.Runs()
        run = runs.start(state, "analyst")
        assert runs.start(state, "analyst") is run or run.state != "running"  # one at a time
        runs.wait()
        assert run.state == "failed" and runs.failed is run and runs.current is None
        summary = run.summary(Speaker("en"))
        assert summary["error"] == "the vault has no person records with a name"
        assert re.search("[\u0600-\u06ff]", run.summary(Speaker("ar"))["error"])
    finally:
        state.close()
