"""What the site shows, gathered once from the records and already made safe.

Everything that leaves this module has been through the redactor: protected people and
sources appear only as their pseudonyms, hidden ones (confidential, secret) not at all,
and every free-text value has had protected names replaced. The pages, the downloads
and the map are all rendered from this one model, so no output can bypass it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from athar.publish.redact import Redactor, is_hidden, is_protected
from athar.records.service import Records
from athar.records.vocab import Vocabularies

LANGS = ("ar", "en")
# free text the site shows; the internal "note" and "ref" fields are workspace material
INCIDENT_TEXT = (
    "title.ar",
    "title.en",
    "description.ar",
    "description.en",
    "place.name_ar",
    "place.name_latin",
    "place.admin_area",
    "perpetrator.name",
)
CLAIM_TEXT = ("party", "text.ar", "text.en", "claimed.label", "published_in", "url")
GROUPS = ("children", "women", "men", "total")


@dataclass
class Casualties:
    low: int
    high: int

    def text(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"

    def to_json(self) -> dict[str, int]:
        return {"min": self.low, "max": self.high}


@dataclass
class Person:
    name: dict[str, str]  # lang -> shown name (a pseudonym if protected)
    pseudonymised: bool
    sex: str | None = None
    age_group: str | None = None
    source_type: str | None = None


@dataclass
class Claim:
    id: str
    text: dict[str, str]
    date: dict[str, Any] | None
    claimed_killed: Casualties | None


@dataclass
class Media:
    file: str  # path inside the site, e.g. media/abcd.jpg
    kind: str  # image or video
    faces_hidden: int


@dataclass
class Incident:
    id: str
    text: dict[str, str]  # field path -> redacted text
    date: dict[str, Any] | None
    coords: tuple[float, float] | None  # lat, lon
    violations: list[str]
    weapons: list[str]
    perpetrator: str | None
    grading: str | None
    killed: dict[str, Casualties]
    injured: dict[str, Casualties]
    victims: list[Person] = field(default_factory=list)
    hidden_victims: int = 0
    sources: list[Person] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    unpublished_media: int = 0
    media_items: list[str] = field(default_factory=list)

    def title(self, lang: str) -> str:
        other = "en" if lang == "ar" else "ar"
        return self.text.get(f"title.{lang}") or self.text.get(f"title.{other}") or self.id

    def killed_total(self) -> Casualties | None:
        """The documented number killed: the total if given, else the sum of the groups."""
        if "total" in self.killed:
            return self.killed["total"]
        parts = [self.killed[g] for g in GROUPS[:3] if g in self.killed]
        if not parts:
            return None
        return Casualties(sum(p.low for p in parts), sum(p.high for p in parts))

    def month(self) -> str | None:
        """The month, when the date is known to within one month."""
        if not self.date:
            return None
        start, end = str(self.date["start"]), str(self.date["end"])
        return start[:7] if start[:7] == end[:7] else None


def _range(value: Any) -> Casualties | None:
    if isinstance(value, dict) and "min" in value and "max" in value:
        return Casualties(int(value["min"]), int(value["max"]))
    return None


def _person_name(data: dict[str, Any], lang: str) -> str:
    order = ("name_ar", "name_latin") if lang == "ar" else ("name_latin", "name_ar")
    for prefix in order:
        full = data.get(f"{prefix}.full")
        if full:
            return str(full)
        parts = [data.get(f"{prefix}.{p}") for p in ("given", "father", "grandfather", "family")]
        composed = " ".join(str(p) for p in parts if p)
        if composed:
            return composed
    return ""


class Gatherer:
    def __init__(self, service: Records, redactor: Redactor) -> None:
        self.service = service
        self.redactor = redactor
        self.vocab: Vocabularies = service.vocab

    def clean(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            return ""
        text, _ = self.redactor.redact(value)
        return text

    def person(self, record_id: str, record_type: str) -> Person | None:
        data = self.service.get(record_id).data
        if is_hidden(record_type, data):
            return None
        if is_protected(record_type, data):
            names = {
                lang: self.redactor.pseudonyms.name(record_id, record_type, lang) for lang in LANGS
            }
            return Person(names, True)
        if record_type == "source":
            shown = self.clean(data.get("organisation") or data.get("name") or "")
            names = {lang: shown for lang in LANGS}
            return Person(names, False, source_type=data.get("type"))
        names = {lang: self.clean(_person_name(data, lang)) for lang in LANGS}
        return Person(names, False, data.get("sex"), data.get("age_group"))

    def claim(self, record_id: str) -> Claim:
        data = self.service.get(record_id).data
        return Claim(
            record_id,
            {p: self.clean(data.get(p)) for p in CLAIM_TEXT if data.get(p)},
            data.get("date"),
            _range(data.get("claimed.killed")),
        )

    def incident(self, record_id: str) -> Incident:
        view = self.service.get(record_id)
        data = view.data
        coords = data.get("place.coordinates")
        incident = Incident(
            id=record_id,
            text={p: self.clean(data.get(p)) for p in INCIDENT_TEXT if data.get(p)},
            date=data.get("date"),
            coords=(float(coords["lat"]), float(coords["lon"])) if coords else None,
            violations=list(data.get("violations") or []),
            weapons=list(data.get("weapons") or []),
            perpetrator=data.get("perpetrator.category"),
            grading=data.get("grading"),
            killed={g: r for g in GROUPS if (r := _range(data.get(f"killed.{g}")))},
            injured={g: r for g in GROUPS if (r := _range(data.get(f"injured.{g}")))},
        )
        claims: set[str] = set()
        for link in view.links:
            if link["direction"] != "out":
                continue
            rel, dst = link["rel"], link["dst"]
            if rel in ("victim", "source"):
                person = self.person(dst, "person" if rel == "victim" else "source")
                target = incident.victims if rel == "victim" else incident.sources
                if person is not None:
                    target.append(person)
                elif rel == "victim":
                    incident.hidden_victims += 1
            elif rel == "claim":
                claims.add(dst)
            elif rel == "media":
                incident.media_items.append(dst)
        claims.update(c["id"] for c in view.children if c["type"] == "claim")
        incident.claims = [self.claim(c) for c in sorted(claims) if self.service.exists(c)]
        incident.victims.sort(key=lambda p: p.name["en"])
        incident.sources.sort(key=lambda p: p.name["en"])
        return incident


def gather(service: Records, redactor: Redactor, incident_ids: Iterable[str]) -> list[Incident]:
    gatherer = Gatherer(service, redactor)
    incidents = [gatherer.incident(i) for i in incident_ids]
    incidents.sort(key=lambda i: ((i.date or {}).get("start", "9999"), i.id))
    return incidents


def linked_record_ids(service: Records, incident_ids: Iterable[str]) -> list[str]:
    """The records whose text the site shows besides the incidents (claims, people and
    sources who are not protected), for the redaction review."""
    out: set[str] = set()
    for incident_id in incident_ids:
        view = service.get(incident_id)
        for link in view.links:
            if link["direction"] != "out" or link["rel"] not in ("claim", "victim", "source"):
                continue
            other = service.get(link["dst"])
            if not is_protected(other.type, other.data):  # shown by pseudonym, not by text
                out.add(other.id)
        out.update(c["id"] for c in view.children if c["type"] == "claim")
    return sorted(out)
