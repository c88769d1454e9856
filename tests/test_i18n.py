"""Arabic is first-class: every user-facing message in the source has an Arabic
translation with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from athar.errors import InputError
from athar.i18n import catalog, pick_language, render_error

KEYWORDS = {
    k: None
    for k in (
        "t",
        "AtharError",
        "InputError",
        "IntegrityError",
        "WrongPassphrase",
        "VaultNotFound",
        "VaultLocked",
        "DiskFull",
        "bad_value",
    )
}
SRC = Path(__file__).resolve().parents[1] / "src" / "athar"


def _source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(SRC), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        if isinstance(message, str) and message.strip():
            found.add(message)
    return found


def test_every_source_message_is_translated_to_arabic() -> None:
    ar = catalog("ar")
    messages = _source_messages()
    assert len(messages) > 60
    missing = sorted(m for m in messages if m not in ar)
    assert missing == []


def test_translations_keep_placeholders() -> None:
    for msgid, msgstr in catalog("ar").items():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", msgstr)), msgid
        assert re.search(r"[\u0600-\u06ff]", msgstr) or msgid == msgstr, msgid


def test_language_choice() -> None:
    assert pick_language("ar") == "ar"
    assert pick_language("fr") in ("en", "ar")
    err = InputError("no such file: {path}", path="/x/شهادة.txt")
    assert render_error(err, "ar") == "لا يوجد ملف: /x/شهادة.txt"
    assert render_error(err, "en") == "no such file: /x/شهادة.txt"


def test_record_types_and_field_labels_are_translated() -> None:
    from athar.records import schema

    ar = catalog("ar")
    labels = {t.label for t in schema.TYPES.values()}
    labels |= {f.label for t in schema.TYPES.values() for f in t.fields.values()}
    assert sorted(label for label in labels if label not in ar) == []
