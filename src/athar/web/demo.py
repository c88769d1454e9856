"""The synthetic demo dataset `athar serve --demo` shows: a besieged city's incidents,
victims with Arabic names, sources, claims and the sample files. Invented, and labelled
as such on every page."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Any

from athar.records.service import Records
from athar.vault.vault import Vault
from athar.web.accounts import Accounts
from athar.web.roles import roles

DEMO_USER = "demo"
DEMO_PASSWORD = "demo password - synthetic data"  # noqa: S105 - printed, labelled demo


def _data() -> dict[str, Any]:
    text = (resources.files("athar.web") / "data" / "demo.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def build(vault: Vault, records: Records, accounts: Accounts, samples: Path) -> None:
    """Fill an empty vault with the demo records and one account per role."""
    data = _data()
    rng = random.Random(2017)  # noqa: S311 - reproducible synthetic names, not secrets
    # Records name the acting account by its pseudonymous id, as the web app does.
    user = accounts.add(DEMO_USER, DEMO_PASSWORD, "admin", "ar").account
    for role in roles():
        if role != "admin":
            accounts.add(f"demo-{role}", DEMO_PASSWORD, role, "ar")
    vault.add([samples], "demo")
    items = vault.items()
    photo = next(i for i in items if i.name.endswith(".png"))
    sources = [records.create("source", dict(s), user) for s in data["sources"]]
    places = data["neighbourhoods"]
    incidents = []
    for spec in data["incidents"]:
        place = places[spec["where"]]
        fields = {
            "title.ar": spec["ar"] + " (بيانات تجريبية)",
            "title.en": spec["en"] + " (demo data)",
            "date": spec["date"],
            "place.name_ar": place["ar"],
            "place.name_latin": place["en"],
            "place.admin_area": data["city"]["ar"],
            "place.coordinates": place["coords"],
            "violations": spec["violations"],
            "killed.total": str(spec["killed"]),
            "perpetrator.category": "unknown",
        }
        if spec.get("weapons"):
            fields["weapons"] = spec["weapons"]
        if spec.get("grading"):
            fields["grading"] = spec["grading"]
        incident = records.create("incident", fields, user)
        incidents.append(incident)
        records.link(incident, "source", rng.choice(sources), user=user)
        for _ in range(int(spec["killed"])):
            female = rng.random() < 0.4
            given = rng.choice(data["given_f" if female else "given_m"])
            father, family = rng.choice(data["given_m"]), rng.choice(data["family"])
            latin = data["latin"]
            person = records.create(
                "person",
                {
                    "name_ar.given": given,
                    "name_ar.father": father,
                    "name_ar.family": family,
                    "name_latin.full": f"{latin[given]} {latin[father]} {latin[family]}",
                    "sex": "female" if female else "male",
                    "age": str(rng.randint(2, 70)),
                },
                user,
            )
            records.create(
                "status",
                {"person": person, "status": "killed", "date": spec["date"], "incident": incident},
                user,
            )
            records.link(incident, "victim", person, user=user)
    records.link(incidents[0], "media", photo.id, user=user)
    for claim in data["claims"]:
        records.create(
            "claim",
            {
                "party": claim["party"],
                "text.ar": claim["text.ar"],
                "claimed.killed": claim["killed"],
                "claimed.label": claim["label"],
                "date": claim["date"],
                "incident": incidents[claim["incident"]],
            },
            user,
        )
    for _ in range(3):
        given = rng.choice(data["given_m"])
        person = records.create(
            "person",
            {"name_ar.given": given, "name_ar.family": rng.choice(data["family"]), "sex": "male"},
            user,
        )
        records.create(
            "status", {"person": person, "status": "disappeared", "date": "2017-05"}, user
        )
        records.create(
            "missing",
            {
                "person": person,
                "reporter.name": "قريب (تجريبي)",
                "reporter.relationship": "mother",
                "last_seen.date": "2017-05",
                "last_seen.place.name_ar": places[1]["ar"],
                "circumstances": "اعتقل عند الحاجز ولم يعرف مصيره (بيانات تجريبية)",
            },
            user,
        )
    vault.checkpoint()
