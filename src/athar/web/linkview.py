"""What the linkage pages show: the latest link run (started from the web, run off the
vault's thread), its review queue as pairs of people side by side with the comparisons
that agreed and disagreed, and family tracing's candidates.

Runs and decisions go through the same service functions as `athar link run`, `athar
link review` and `athar trace`; a decision is the same signed `linkage.decision` event.

The latest run lives in memory only (its pairs name people: never written to disk), so a
restarted server starts a new run when the queue is first opened. A run reads the vault on
the vault's thread, then scores on a thread of its own, so pages keep answering while it
works. Reading a person never touches a missing-person report: those hold the searcher's
name and contact, which must not reach these pages.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from athar.errors import AtharError, InputError
from athar.linkage import names, service, trace, vault, web_api
from athar.linkage.lists import ListRow
from athar.records.search import Filters
from athar.records.service import Records
from athar.web.locale import Speaker
from athar.web.state import State

PER_PAGE = 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusLine:
    status: str  # a person_status term
    date: Any  # the record's date value
    place: str
    source: str  # the source record's title, if the status names one


@dataclass
class PersonCard:
    """One person as a reviewer compares them: names in both scripts, parents, sex, age,
    what happened to them, when, where, and on whose word."""

    id: str
    name_ar: str = ""
    name_latin: str = ""
    father: str = ""
    mother: str = ""
    sex: str = ""
    age: str = ""
    birth_year: str = ""
    statuses: list[StatusLine] = field(default_factory=list)
    incidents: list[tuple[str, str]] = field(default_factory=list)  # (id, title)
    missing: bool = False  # deleted since the run

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name_ar": self.name_ar,
            "name_latin": self.name_latin,
            "father": self.father,
            "mother": self.mother,
            "sex": self.sex,
            "age": self.age,
            "birth_year": self.birth_year,
            "statuses": [
                {"status": s.status, "date": s.date, "place": s.place, "source": s.source}
                for s in self.statuses
            ],
            "incidents": [i for i, _ in self.incidents],
        }


@dataclass
class QueuePair:
    left: PersonCard
    right: PersonCard
    probability: float
    explanation: web_api.PairExplanation | None
    reasons: list[str]
    skipped: bool

    def to_json(self) -> dict[str, Any]:
        fields = self.explanation.fields if self.explanation else []
        return {
            "left": self.left.id,
            "right": self.right.id,
            "match_probability": round(self.probability, 4),
            "comparisons": [f.to_json() for f in fields],
            "reasons": self.reasons,
            "skipped": self.skipped,
            "people": [self.left.to_json(), self.right.to_json()],
        }


class LinkRun:
    """One link run: its progress while it works (it is the `Progress` the service
    advances), then its result."""

    def __init__(self, number: int, user: str) -> None:
        self.number = number
        self.user = user
        self.started = time.time()
        self.finished: float | None = None
        self.total = 0
        self.done = 0
        self.rows: list[ListRow] = []
        self.decisions = 0
        self.result: service.LinkResult | None = None
        self.error: AtharError | None = None
        self.explanations: dict[tuple[str, str], web_api.PairExplanation] = {}
        self.decided: set[tuple[str, str]] = set()  # pairs decided on the web since
        self.skipped: dict[str, set[tuple[str, str]]] = {}  # user → pairs put last

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, amount: int) -> None:
        self.done += amount

    @property
    def state(self) -> str:
        if self.finished is None:
            return "running"
        return "failed" if self.error is not None else "done"

    def queue(self, user: str) -> list[service.ReviewPair]:
        """The pairs still to review, strongest first; those *user* skipped last."""
        if self.result is None:
            return []
        pending = [
            p for p in self.result.review if web_api.pair_key(p.left, p.right) not in self.decided
        ]
        skipped = self.skipped.get(user, set())
        return sorted(pending, key=lambda p: web_api.pair_key(p.left, p.right) in skipped)

    def summary(self, speaker: Speaker) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.number,
            "state": self.state,
            "started_by": self.user,
            "started": self.started,
            "finished": self.finished,
            "step": self.done,
            "steps": self.total,
        }
        if self.error is not None:
            out["error"] = speaker.error(self.error)
        if self.result is not None:
            groups: dict[str, list[str]] = {}
            for rid, cid in self.result.clustering.cluster_of.items():
                groups.setdefault(cid, []).append(rid)
            out.update(
                records=len(self.result.clustering.cluster_of),
                people=self.result.clusters,
                decisions=self.decisions,
                review_pairs=len(self.result.review),
                linked={cid: sorted(ids) for cid, ids in groups.items() if len(ids) > 1},
                notes=[speaker.t(text, **params) for text, params in self.result.notes],
            )
        return out


class Runs:
    """The server's link runs: at most one at a time, on a thread of its own (the
    vault's thread, `web.worker`, only serves the reading at the start). Submitted to
    the thread at once, not through the event loop, so a run outlives the request that
    started it whatever loop served that request."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-linkage")
        self.latest: LinkRun | None = None  # the newest finished run
        self.current: LinkRun | None = None  # the run in progress, if any
        self.failed: LinkRun | None = None  # the newest run, when it failed
        self._count = 0
        self._future: Future[None] | None = None

    def shown(self) -> LinkRun | None:
        """The run whose queue is shown: the latest finished one, else the one working."""
        return self.latest or self.current

    def start(self, state: State, user: str) -> LinkRun:
        """Start a run in the background (or return the one already working)."""
        if self.current is not None:
            return self.current
        self._count += 1
        run = LinkRun(self._count, user)
        self.current = run
        self._future = self.pool.submit(self._execute, state, run)
        return run

    def _execute(self, state: State, run: LinkRun) -> None:
        try:
            rows, decided = state.worker.call(_read, state.records)
            run.rows, run.decisions = rows, len(decided)
            if not rows:
                raise InputError("the vault has no person records with a name")
            result = service.link_records(rows, decisions=decided, progress=run)
            model = result.parameters.get("splink_model", {})
            run.explanations = web_api.explain_pairs(rows, result.review, model)
            run.result = result  # last: a page never sees a queue without its reasons
        except AtharError as exc:
            run.error = exc
        except Exception as exc:  # said on the page; where it happened goes to the log
            # only the kind and the place: an exception's text may quote names
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "link run %d failed: %s at %s:%s",
                run.number,
                type(exc).__name__,
                where.filename,
                where.lineno,
            )
            run.error = InputError(
                "the link run failed ({error}); see the server's log", error=type(exc).__name__
            )
        finally:
            run.finished = time.time()
            if run.error is None:
                self.latest, self.failed = run, None
            else:
                self.failed = run  # said on the page; the last good queue stays shown
                if self.latest is None:
                    self.latest = run
            self.current = None

    def decided(self, left: str, right: str) -> None:
        """A pair was decided: it leaves the queue shown and the one being computed (that
        run read the decisions before this one was made)."""
        for run in (self.latest, self.current):
            if run is not None:
                run.decided.add(web_api.pair_key(left, right))

    def wait(self, timeout: float = 120.0) -> None:
        """Until the run in progress, if any, has ended (benchmarks, tests)."""
        if self._future is not None:
            self._future.result(timeout)


def runs_of(request: Request) -> Runs:
    """The app's runs, made on first use (route handlers run on the event loop, one at a
    time, so two requests cannot both make one)."""
    app_state = request.app.state
    runs: Runs | None = getattr(app_state, "linkage_runs", None)
    if runs is None:
        runs = Runs()
        app_state.linkage_runs = runs
    return runs


def _read(store: Records) -> tuple[list[ListRow], list[Any]]:
    return vault.person_rows(store), vault.decisions(store)


# ------------------------------------------------------------------- people, side by side


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "min" in value:
        low, high = value.get("min"), value.get("max")
        return str(low) if low == high else f"{low}–{high}"
    return str(value).strip()


def _name(data: dict[str, Any], script: str) -> str:
    full = _text(data.get(f"{script}.full"))
    if full:
        return full
    parts = ("given", "father", "grandfather", "family")
    return " ".join(_text(data.get(f"{script}.{p}")) for p in parts if data.get(f"{script}.{p}"))


def person_card(store: Records, record_id: str) -> PersonCard:
    """A person as the queue shows them (call on the vault thread). The father's name is
    the recorded one, else the one read from the full name; statuses and incidents come
    from the projection. Missing-person reports (the person's other children) are skipped:
    they name the searcher."""
    card = PersonCard(record_id)
    try:
        view = store.get(record_id)
    except InputError:
        view = None
    if view is None or view.deleted or view.type != "person":
        card.missing = True
        return card
    data = view.data
    card.name_ar, card.name_latin = _name(data, "name_ar"), _name(data, "name_latin")
    parsed = names.parse_name(card.name_ar or card.name_latin)
    card.father = (
        _text(data.get("name_ar.father")) or _text(data.get("name_latin.father")) or parsed.father
    ) or ""
    card.mother = (
        _text(data.get("name_ar.mother")) or _text(data.get("name_latin.mother")) or parsed.mother
    ) or ""
    card.sex = _text(data.get("sex"))
    card.age, card.birth_year = _text(data.get("age")), _text(data.get("birth_year"))
    sources: list[str] = []
    for child in view.children:
        if child["type"] != "status":
            continue
        fields = child["fields"]
        source = fields.get("source")
        if isinstance(source, str):
            sources.append(source)
        card.statuses.append(
            StatusLine(
                _text(fields.get("status")),
                fields.get("date"),
                _text(fields.get("place.name_ar")) or _text(fields.get("place.name_latin")),
                source if isinstance(source, str) else "",
            )
        )
    incidents = [
        str(link["src"])
        for link in view.links
        if link["rel"] == "victim" and link["direction"] == "in"
    ]
    titles = store.titles(sources + incidents)
    card.statuses = [
        StatusLine(s.status, s.date, s.place, titles.get(s.source, s.source) if s.source else "")
        for s in card.statuses
    ]
    card.incidents = [(i, titles.get(i, i)) for i in incidents]
    return card


def queue_page(
    state: State, run: LinkRun, user: str, page: int, lang: str
) -> tuple[list[QueuePair], int]:
    """One page of *run*'s queue for *user* (call on the vault thread), and the total."""
    pending = run.queue(user)
    chosen = pending[page * PER_PAGE : (page + 1) * PER_PAGE]
    by_id = {r.record_id: r for r in run.rows}
    skipped = run.skipped.get(user, set())
    cards: dict[str, PersonCard] = {}
    for rid in dict.fromkeys(r for pair in chosen for r in (pair.left, pair.right)):
        cards[rid] = person_card(state.records, rid)
    out = []
    for pair in chosen:
        key = web_api.pair_key(pair.left, pair.right)
        left, right = by_id.get(pair.left), by_id.get(pair.right)
        reasons = (
            names.explain(names.similarity(left.name, right.name), lang)
            if left is not None and right is not None
            else []
        )
        out.append(
            QueuePair(
                cards[pair.left],
                cards[pair.right],
                pair.probability,
                run.explanations.get(key),
                reasons,
                key in skipped,
            )
        )
    return out, len(pending)


def decide(
    state: State, runs: Runs, left: str, right: str, verdict: str, note: str, user: str
) -> str | None:
    """match / non_match: the CLI's signed decision (call on the vault thread); skip: the
    pair goes to the end of this user's queue, nothing is written. Returns the event id."""
    if verdict not in ("match", "non_match", "skip"):
        raise InputError("the decision must be match, non-match or skip").at("decision")
    if not left or not right:
        raise InputError("a decision needs two person records")
    if verdict == "skip":
        return None
    event = vault.decide(
        state.records, left, right, verdict == "match", note.strip()[:2000] or None, user
    )
    runs.decided(state.records.resolve(left), state.records.resolve(right))
    return event


# ------------------------------------------------------------------------ family tracing


@dataclass(frozen=True)
class ReportChoice:
    id: str
    sought: str  # the person sought's name, never the reporter's
    last_seen: Any


def reports(store: Records, limit: int = 500) -> list[ReportChoice]:
    """Open missing-person reports to choose from: the person sought and when they were
    last seen. The reporter's fields are not read."""
    found = store.find(None, Filters(type="missing"), limit=limit)
    out = []
    for row in found:
        rid = str(row["id"])
        data = store.get(rid).data
        if data.get("resolved") is True:
            continue
        sought = data.get("person")
        name = ""
        if isinstance(sought, str) and store.exists(sought, "person"):
            name = store.titles([sought]).get(sought, "")
        out.append(ReportChoice(rid, name, data.get("last_seen.date")))
    return out


@dataclass
class TraceResult:
    report: str
    sought: PersonCard
    candidates: list[trace.Candidate]


async def run_trace(state: State, report_id: str, lang: str, limit: int = 20) -> TraceResult:
    """`athar trace`'s service, with the person sought as the queue shows people (without
    the report: it holds the searcher's details). The records are read on the vault
    thread; the ranking (a model trained for seconds) runs on its own thread, one trace
    at a time, so other pages are not kept waiting."""

    def read() -> tuple[str, trace.Sought, PersonCard]:
        store = state.records
        report = store.get(report_id)
        gathered = trace.gather(store, report.id)
        return report.id, gathered, person_card(store, gathered.row.record_id)

    report, gathered, card = await state.worker.run(read)
    found = await run_in_threadpool(_rank, gathered, lang, limit)
    return TraceResult(report, card, found)


_TRACING = threading.Lock()


def _rank(gathered: trace.Sought, lang: str, limit: int) -> list[trace.Candidate]:
    with _TRACING:  # two models trained at once would halve each other's speed
        return trace.rank(gathered, lang, limit)
