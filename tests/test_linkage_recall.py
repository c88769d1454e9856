"""What raised recall on the hard lists (issue 7): name readings that kept one person's
records apart, the blocking rule for records without a given name, and the floor under
EM's m probabilities."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
import pytest

from athar.linkage import model, synth
from athar.linkage.features import feature_table
from athar.linkage.lists import ListRow, read_lists
from athar.linkage.names import canonical_given, name_features, part_form
from athar.linkage.translit import skeleton


def _family_key(name: str) -> str | None:
    key: str | None = name_features(name)["family_key"]
    return key


def test_a_doubled_letter_does_not_change_the_skeleton() -> None:
    # Arabic writes a doubled consonant once: حللبي is a slip for حلبي
    assert part_form("حللبي", "family").skel == part_form("حلبي", "family").skel
    assert part_form("الإدلببي", "family").skel == part_form("الإدلبي", "family").skel
    assert skeleton("hssan") == skeleton("hsn") == "hsn"
    # different consonants stay different
    assert part_form("حلبي", "family").skel != part_form("حلواني", "family").skel


def test_an_unlisted_arabic_spelling_is_not_read_as_another_name_by_its_key() -> None:
    # احمد with its ح dropped, زهير with its ي dropped: slips, not عماد or زاهر
    assert canonical_given("امد") is None
    assert canonical_given("زهر") is None
    # listed spellings and what normalising folds still resolve
    assert canonical_given("عماد") == "imad"
    assert canonical_given("محمّد") == canonical_given("محمد") == "muhammad"
    assert canonical_given("أحمد") == "ahmad"
    # Latin spellings keep the key lookup (Mouhammad is listed nowhere)
    assert canonical_given("Mouhammad") == "muhammad"


@pytest.mark.parametrize(
    ("name", "given", "family", "kunya"),
    [
        ("YUSUF Jasmin Yusef", "jasmin", "yusuf", None),  # a family name that is a given name
        ("SULEIMAN Ahad", "ahad", "suleiman", None),
        ("ZUBI Abu Muhammed", None, "zubi", "abu muhammed"),  # kunya + family in capitals
        ("ABU HAMDAN Abdo", "abdo", "abu hamdan", None),  # a family name like a kunya
        ("MHD Ahmad Hamwi", "mhd", "hamwi", None),  # an abbreviation stays the given name
    ],
)
def test_capitals_mark_the_family_name(
    name: str, given: str | None, family: str, kunya: str | None
) -> None:
    f = name_features(name)
    assert (f["given_norm"], f["family_norm"], f["kunya_norm"]) == (given, family, kunya)


def test_family_names_made_of_a_kunya_or_a_prefix_keep_their_parts() -> None:
    assert _family_key("محمد محمد وليد الابو بكر") == _family_key("زينب أبو بكر")
    assert _family_key("Zaynab Al-Abu Bakr") == _family_key("زينب أبو بكر")
    assert _family_key("عبدو عبد الله الأبو حمدان") == _family_key("Abdellah Abu Hamdan")
    assert _family_key("Muhammad Bani Al-Marja") == _family_key("محمد بني المرجه")
    assert name_features("Muhammad Bani Al-Marja")["father_norm"] is None


def test_a_space_typed_one_letter_off_inside_abd_is_mended() -> None:
    f = name_features("عبد الرحمن عبدا لوهاب")
    assert (f["given_id"], f["family_norm"]) == ("abd_al_rahman", "عبدالوهاب")
    assert name_features("عب دالمطلب غالب المعاذي")["given_id"] == "abd_al_mutallib"
    # names that only start like عبد are left alone
    assert name_features("عبير محمد")["given_id"] == "abir"
    assert name_features("عبدو عبد الله")["given_norm"] == "عبدو"


def test_a_joined_latin_article_before_a_consonant_y_is_dropped() -> None:
    assert part_form("Alyameny", "family").key == part_form("اليامني", "family").key
    assert part_form("Alyassini", "family").skel == part_form("الياسيني", "family").skel
    assert part_form("Alyassini", "family").key == "ysni"  # not "alisni"
    # a given name that starts like the article is kept whole
    assert part_form("Elyas", "given").key == part_form("إلياس", "given").key


def _row(rid: str, name: str, place: str = "حلب") -> ListRow:
    return ListRow(rid, "a", name, "", "", "", None, None, None, place, "")


def test_records_without_a_given_name_meet_their_family() -> None:
    rows = [
        _row("r1", "أبو خالد الحموي"),  # a kunya: no given name
        _row("r2", "محمد أحمد الحموي", place="دمشق"),
        _row("r3", "علي حسن الحموي", place="إدلب"),
        _row("r4", "سعيد الحلبي"),
    ]
    frame = feature_table(rows)
    rule = ("family_skel", f"{model.LACKS}given_key")
    assert rule in model.rule_columns(frame)
    # the kunya meets both الحموي records; the two full names do not meet by this rule
    assert model.comparisons_of(frame, rule) == 2
    assert model.comparisons_of(frame, ("family_skel",)) == 3
    sql = model.block_rule(rule).get_blocking_rule("duckdb").blocking_rule_sql
    assert "given_key IS NULL" in sql and '"family_skel"' in sql


def test_a_rule_needs_a_column_both_records_agree_on() -> None:
    frame = pd.DataFrame({"given_key": [None, "mhmd"], "family_skel": ["hmu", "hmu"]})
    with pytest.raises(ValueError, match="agree on"):
        model.comparisons_of(frame, (f"{model.LACKS}given_key",))


def test_training_leaves_no_level_without_weight(tmp_path: Path) -> None:
    rows, truth = synth.generate(150, "hard", seed=5)
    lists, _ = synth.write(rows, truth, tmp_path)
    loaded = read_lists([lists]).rows
    frame = feature_table(loaded)
    link = model.linker(frame, rules=model.rule_columns(frame))
    training = model.train(link, len(frame))
    assert training.trained
    for comparison in link._settings_obj.comparisons:
        ms = [lv.m_probability for lv in comparison._comparison_levels_excluding_null]
        assert all(m >= model.M_FLOOR * (1 - 1e-9) for m in ms), comparison.output_column_name
        assert math.isclose(sum(ms), 1.0, abs_tol=0.05) or sum(ms) <= 1.0 + 1e-9
