"""Redaction: protected people and sources become stable pseudonyms, and their names are
caught in free text in any spelling and script, in file names too."""

from __future__ import annotations

import pytest

from athar.errors import InputError
from athar.publish.pseudonyms import Pseudonyms
from athar.publish.redact import Redactor, is_hidden, is_protected
from athar.publish.select import chosen_incidents, redactor_for, review
from athar.records.service import Records
from athar.vault.vault import Vault

KEY = bytes(range(32))


def witness_redactor() -> Redactor:
    redactor = Redactor(Pseudonyms(KEY))
    redactor.protect("src-1", "source", {"type": "witness", "name": "محمد أحمد الحلبي"})
    redactor.protect(
        "per-2",
        "person",
        {
            "name_latin.full": "Fatima Ali Hassan",
            "name_ar.kunya": "أم خالد",
            "protection": "secret",
        },
    )
    return redactor


@pytest.mark.parametrize(
    "text",
    [
        "قال الشاهد مُحمّد الحلبي إن القذيفة سقطت",  # diacritics, no father's name
        "Mohamad al-Halabi said the shell fell",
        "Muhammed Ahmad Halaby saw it",
        "photo IMG_mohammad-halabi_0042.jpg",  # a file name
        "MOHAMMED AL HALABI",
        "شهادة فاطمه حسن",  # ة written as ه
        "Fatma Hasan and others",
        "حدثتنا أم خالد عن الليلة",  # the kunya alone
    ],
)
def test_protected_names_are_found_in_any_spelling(text: str) -> None:
    redactor = witness_redactor()
    redacted, hits = redactor.redact(text)
    assert hits, text
    for hit in hits:
        assert hit.text not in redacted
    assert ("مصدر" in redacted or "شخص" in redacted) or (
        "Source" in redacted or "Person" in redacted
    )


@pytest.mark.parametrize(
    "text",
    [
        "محمد وصل إلى السوق",  # a common given name alone is not the witness
        "Mohammed Ali went home",
        "the Halabi family",
        "",
    ],
)
def test_other_people_are_left_alone(text: str) -> None:
    redacted, hits = witness_redactor().redact(text)
    assert hits == [] and redacted == text


def test_pseudonyms_are_stable_keyed_and_bilingual() -> None:
    a, b = Pseudonyms(KEY), Pseudonyms(bytes(32))
    assert a.name("src-1", "source", "en") == a.name("src-1", "source", "en")
    assert a.code("src-1") != b.code("src-1")  # another vault: another pseudonym
    assert a.code("src-1") != a.code("src-2")
    assert a.name("src-1", "source", "ar").startswith("مصدر ")
    assert a.name("per-1", "person", "en").startswith("Person ")
    with pytest.raises(ValueError):
        Pseudonyms(b"short")


def test_protection_levels() -> None:
    assert is_protected("source", {})  # a source with no level set is protected
    assert not is_protected("source", {"protection": "public"})
    assert not is_protected("person", {})
    assert is_protected("person", {"protection": "pseudonymise"})
    assert is_hidden("person", {"protection": "confidential"})
    assert not is_hidden("person", {"protection": "pseudonymise"})


def test_review_finds_the_witness_in_an_incident(vault: Vault) -> None:
    with Records(vault) as records:
        source = records.create(
            "source",
            {"type": "witness", "name": "محمد أحمد الحلبي", "protection": "pseudonymise"},
        )
        records.create("person", {"name_ar.full": "خالد عمر", "protection": "public"})
        incident = records.create(
            "incident",
            {
                "title.ar": "قصف الفرن",
                "title.en": "Shelling of the bakery",
                "description.en": "Mohamad al-Halabi saw three shells fall near the bakery.",
                "description.ar": "رأى خالد عمر القذائف",
            },
        )
        records.link(incident, "source", source)
        redactor = redactor_for(records)
        chosen = chosen_incidents(records, [incident[:10]])
        findings = review(records, redactor, chosen)
        with pytest.raises(InputError, match="no incident is marked"):
            chosen_incidents(records, [])
        with pytest.raises(InputError, match="not an incident"):
            chosen_incidents(records, [source])
    assert [(f.record, f.path) for f in findings] == [(incident, "description.en")]
    (hit,) = findings[0].hits
    assert hit.text == "Mohamad al-Halabi" and hit.record_id == source
    assert findings[0].to_json(redactor.pseudonyms)["found"][0]["replaced_by"].startswith("Source ")


def test_cli_review(cli, vault: Vault) -> None:
    with Records(vault) as records:
        records.create("source", {"type": "witness", "name": "Fatima Hassan"})
        incident = records.create(
            "incident", {"title.ar": "شهادة فاطمة حسن عن القصف", "title.en": "Testimony"}
        )
    vault.close()
    result = cli("publish", "review", "--include", incident)
    assert result.exit_code == 0, result.output
    assert "فاطمة حسن" in result.output and "title.ar" in result.output
