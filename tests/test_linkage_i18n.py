"""The reasons shown to a person tracing a relative exist in Arabic as well as English."""

from __future__ import annotations

import re

from athar.linkage.names import (
    PART_LABELS,
    REASONS,
    VERDICTS,
    Reason,
    describe,
    explain,
    similarity,
)

MESSAGES = [*REASONS.values(), *VERDICTS.values(), *PART_LABELS.values()]
ARABIC = re.compile("[\u0600-\u06ff]")


def test_messages_have_only_known_placeholders() -> None:
    for message in MESSAGES:
        assert set(re.findall(r"\{(\w+)\}", message)) <= {"part", "other_part", "a", "b"}


def test_every_reason_reads_in_arabic() -> None:
    for code in REASONS:
        text = describe(Reason(code, "family", "الحلبي", "Halabi", "father"), "ar")
        assert ARABIC.search(text) and "{" not in text, code
    match = similarity("محمد أحمد الحلبي", "Mohammad Ahmad al-Halabi")
    assert all(ARABIC.search(line) for line in explain(match, "ar"))
