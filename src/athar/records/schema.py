"""The record types and their fields.

Informed by HURIDOCS Events Standard Formats (event, act, victim, source), the Airwars
civilian-harm method (casualties as minimum–maximum ranges by children / women / men,
grading from confirmed to discounted, the belligerent's own claim beside the evidence) and
the Syrian Archive metadata standard. Field paths are flat dotted names; each path is the
unit of conflict resolution, so two documenters who edit the Arabic and the English title
at the same time both keep their edit. Values that must stay consistent together (a date
range, a coordinate pair, a casualty range) are one field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Kinds of field values; see athar.records.values for how each is read.
TEXT, LONGTEXT, BOOL, YEAR, AGE, COUNT = "text", "longtext", "bool", "year", "age", "count"
RANGE, DATE, COORDS, TERM, TERMS, REF = "range", "date", "coordinates", "term", "terms", "ref"


@dataclass(frozen=True)
class Field:
    path: str
    kind: str
    vocabulary: str | None = None  # for term / terms
    target: str | None = None  # for ref: the record type referred to
    private: bool = False  # contact details and the like: never exported or published
    label: str = ""


@dataclass(frozen=True)
class RecordType:
    name: str
    label: str
    fields: dict[str, Field]
    # At least one field of each group must be set for a record to be created.
    required: tuple[tuple[str, ...], ...]
    # rel -> record type (or "item": a vault item) of the other end
    links: dict[str, str] = field(default_factory=dict)
    date_field: str | None = None
    place_fields: tuple[str, ...] = ()
    admin_field: str | None = None
    coords_field: str | None = None
    parent_field: str | None = None  # a ref whose record this one belongs to


def _fields(*specs: Field) -> dict[str, Field]:
    common = (
        Field("note", LONGTEXT, label="Note"),
        Field("ref", TEXT, label="External reference"),
    )
    return {f.path: f for f in (*specs, *common)}


def _place(prefix: str) -> tuple[Field, ...]:
    return (
        Field(f"{prefix}.name_ar", TEXT, label="Place (Arabic)"),
        Field(f"{prefix}.name_latin", TEXT, label="Place (Latin)"),
        Field(f"{prefix}.admin_area", TEXT, label="Administrative area"),
    )


_NAME_PARTS = {
    "given": "Given name",
    "father": "Father's name",
    "grandfather": "Grandfather's name",
    "family": "Family name",
    "mother": "Mother's name",
    "kunya": "Kunya or nickname",
    "full": "Full name",
}


def _name(prefix: str, script: str) -> tuple[Field, ...]:
    return tuple(
        Field(f"{prefix}.{part}", TEXT, label=f"{label} ({script})")
        for part, label in _NAME_PARTS.items()
    )


def _casualties(outcome: str) -> tuple[Field, ...]:
    groups = ("children", "women", "men", "total")
    return tuple(
        Field(f"{outcome}.{g}", RANGE, label=f"{outcome.capitalize()}: {g}") for g in groups
    )


PERSON_NAME_FIELDS = tuple(
    f"{prefix}.{part}"
    for prefix in ("name_ar", "name_latin")
    for part in ("given", "father", "grandfather", "family", "kunya", "full")
)

INCIDENT = RecordType(
    "incident",
    "Incident",
    _fields(
        Field("title.ar", TEXT, label="Title (Arabic)"),
        Field("title.en", TEXT, label="Title (English)"),
        Field("description.ar", LONGTEXT, label="Description (Arabic)"),
        Field("description.en", LONGTEXT, label="Description (English)"),
        Field("date", DATE, label="Date"),
        *_place("place"),
        Field("place.coordinates", COORDS, label="Coordinates"),
        Field("violations", TERMS, vocabulary="violation", label="Violations"),
        Field("weapons", TERMS, vocabulary="weapon", label="Weapons"),
        Field("perpetrator.category", TERM, vocabulary="perpetrator", label="Alleged perpetrator"),
        Field("perpetrator.name", TEXT, label="Alleged perpetrator (name)"),
        Field("perpetrator.confidence", TERM, vocabulary="confidence", label="Attribution"),
        *_casualties("killed"),
        *_casualties("injured"),
        Field("grading", TERM, vocabulary="grading", label="Grading"),
        # Marks an incident for publication; `athar publish` still redacts and asks.
        Field("publish", BOOL, label="Marked for publication"),
    ),
    required=(("title.ar", "title.en"),),
    links={
        "victim": "person",
        "source": "source",
        "testimony": "testimony",
        "claim": "claim",
        "media": "item",
        "related": "incident",
    },
    date_field="date",
    place_fields=("place.name_ar", "place.name_latin"),
    admin_field="place.admin_area",
    coords_field="place.coordinates",
)

PERSON = RecordType(
    "person",
    "Person",
    _fields(
        *_name("name_ar", "Arabic"),
        *_name("name_latin", "Latin"),
        Field("sex", TERM, vocabulary="sex", label="Sex"),
        Field("age", AGE, label="Age"),
        Field("age_group", TERM, vocabulary="age_group", label="Age group"),
        Field("birth_year", YEAR, label="Year of birth"),
        *_place("origin"),
        Field("protection", TERM, vocabulary="protection", label="Protection"),
    ),
    required=(PERSON_NAME_FIELDS,),
    links={"media": "item"},
    place_fields=("origin.name_ar", "origin.name_latin"),
    admin_field="origin.admin_area",
)

STATUS = RecordType(
    "status",
    "Status",
    _fields(
        Field("person", REF, target="person", label="Person"),
        Field("status", TERM, vocabulary="person_status", label="Status"),
        Field("date", DATE, label="Date"),
        *_place("place"),
        Field("source", REF, target="source", label="Source"),
        Field("incident", REF, target="incident", label="Incident"),
    ),
    required=(("person",), ("status",)),
    date_field="date",
    place_fields=("place.name_ar", "place.name_latin"),
    admin_field="place.admin_area",
    parent_field="person",
)

SOURCE = RecordType(
    "source",
    "Source",
    _fields(
        Field("name", TEXT, label="Name"),
        Field("type", TERM, vocabulary="source_type", label="Type"),
        Field("organisation", TEXT, label="Organisation"),
        Field("reliability", TERM, vocabulary="reliability", label="Reliability (A–F)"),
        Field("credibility", TERM, vocabulary="credibility", label="Credibility (1–6)"),
        Field("protection", TERM, vocabulary="protection", label="Protection"),
        Field("contact", TEXT, private=True, label="Contact"),
    ),
    required=(("type",),),
    links={"media": "item"},
)

TESTIMONY = RecordType(
    "testimony",
    "Testimony",
    _fields(
        Field("text", LONGTEXT, label="Text"),
        Field("language", TERM, vocabulary="language", label="Language"),
        Field("date", DATE, label="Date of interview"),
        Field("interviewer", TEXT, private=True, label="Interviewer"),
        Field("source", REF, target="source", label="Witness (source)"),
        Field("consent", TERM, vocabulary="consent", label="Consent"),
        Field("consent.date", DATE, label="Consent date"),
        Field("consent.note", TEXT, label="Consent note"),
    ),
    required=(("consent",), ("text", "note")),
    links={"media": "item"},
    date_field="date",
    parent_field="source",
)

CLAIM = RecordType(
    "claim",
    "Claim",
    _fields(
        Field("party", TEXT, label="Party making the claim"),
        Field("party.category", TERM, vocabulary="perpetrator", label="Party category"),
        Field("text.ar", LONGTEXT, label="Statement (Arabic)"),
        Field("text.en", LONGTEXT, label="Statement (English)"),
        Field("date", DATE, label="Date of the claim"),
        Field("claimed.killed", RANGE, label="Killed, as claimed"),
        Field("claimed.label", TEXT, label="Who the claim says were killed"),
        Field("published_in", TEXT, label="Published in"),
        Field("url", TEXT, label="Address (URL)"),
        Field("incident", REF, target="incident", label="Incident"),
    ),
    required=(("party",),),
    links={"media": "item"},
    date_field="date",
    parent_field="incident",
)

MISSING = RecordType(
    "missing",
    "Missing-person report",
    _fields(
        Field("person", REF, target="person", label="Person sought"),
        Field("reporter.name", TEXT, private=True, label="Reported by"),
        Field("reporter.contact", TEXT, private=True, label="Reporter's contact"),
        Field("reporter.relationship", TERM, vocabulary="relationship", label="Relationship"),
        Field("last_seen.date", DATE, label="Last seen (date)"),
        *_place("last_seen.place"),
        Field("circumstances", LONGTEXT, label="Circumstances"),
        Field("resolved", BOOL, label="Resolved"),
    ),
    required=(("person",),),
    date_field="last_seen.date",
    place_fields=("last_seen.place.name_ar", "last_seen.place.name_latin"),
    admin_field="last_seen.place.admin_area",
    parent_field="person",
)

# One per vault item (its id is derived from the item's), following the Berkeley
# Protocol's source / technical / content analysis: a check per question, the overall
# status, and the verifier's reasoning. Every edit is a signed event like any record's.
CHECKS = ("provenance", "source", "date", "location", "content")

VERIFICATION = RecordType(
    "verification",
    "Verification",
    _fields(
        Field("item", TEXT, label="Item"),
        Field("status", TERM, vocabulary="verification_status", label="Verification status"),
        *(
            Field(f"check.{c}", TERM, vocabulary="check_result", label=f"Check: {c}")
            for c in CHECKS
        ),
        Field("reasoning", LONGTEXT, label="Reasoning"),
        Field("verifier", TEXT, label="Verifier"),
        Field("date", DATE, label="Date of the decision"),
    ),
    required=(("item",), ("status",)),
    links={"corroborating": "item", "source": "source", "incident": "incident"},
    date_field="date",
)

TYPES: dict[str, RecordType] = {
    t.name: t for t in (INCIDENT, PERSON, STATUS, SOURCE, TESTIMONY, CLAIM, MISSING, VERIFICATION)
}
DELETED = "deleted"  # a reserved field: true hides the record; history keeps everything
