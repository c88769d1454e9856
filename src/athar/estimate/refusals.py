"""Refuse where the data cannot support an estimate, and say why in plain words.

Capture–recapture learns how many people no list recorded from how the lists overlap.
Without at least three lists the dependence between lists cannot be told apart from the
number missed; without any overlap there is nothing to learn from; a list that holds
everyone recorded leaves nothing missing to estimate and breaks the models. These are
refusals, not warnings: printing a number there would be inventing it.
"""

from __future__ import annotations

from collections.abc import Iterable

from athar.errors import InputError
from athar.estimate.histories import CaptureHistories
from athar.estimate.messages import Notice, notice

MIN_LISTS = 3


def _where(error: InputError, histories: CaptureHistories, stratify: str | None) -> InputError:
    if histories.stratum is None:
        return error
    label = f"{stratify}={histories.stratum}" if stratify else histories.stratum
    result = error.at(label)
    assert isinstance(result, InputError)
    return result


def check(
    histories: CaptureHistories, stratify: str | None = None
) -> tuple[CaptureHistories, list[Notice]]:
    """The table to estimate from (lists that record no one left out, with a notice), or
    an InputError naming the stratum at fault."""
    notices: list[Notice] = []
    if histories.observed == 0:
        if histories.stratum is not None:
            raise _where(InputError("this stratum has no recorded people"), histories, stratify)
        raise InputError("no one is recorded in the file")
    totals = histories.list_totals()
    for index in reversed(range(histories.n_lists)):
        if totals[index] == 0:
            name = histories.lists[index]
            histories = histories.without_list(index)
            notices.append(
                notice("list {name} records no one here and was left out", name=name)
                if histories.stratum is None
                else notice(
                    "list {name} records no one in stratum {stratum} and was left out there",
                    name=name,
                    stratum=histories.stratum,
                )
            )
    if histories.n_lists < MIN_LISTS:
        raise _where(
            InputError(
                "{found} lists with records; at least 3 are needed, because with fewer the "
                "way lists depend on each other cannot be told apart from the number of "
                "people no list recorded",
                found=histories.n_lists,
            ),
            histories,
            stratify,
        )
    totals = histories.list_totals()
    for index, total in enumerate(totals):
        if total == histories.observed:
            raise _where(
                InputError(
                    "list {name} holds every recorded person; the other lists then show no "
                    "one it missed, and the models cannot say how many it did",
                    name=histories.lists[index],
                ),
                histories,
                stratify,
            )
    on_several = histories.patterns.sum(axis=1) >= 2
    if int(histories.counts[on_several].sum()) == 0:
        raise _where(
            InputError(
                "no one appears on more than one list; capture–recapture learns from the "
                "overlap between lists, so without overlap there is no estimate"
            ),
            histories,
            stratify,
        )
    return histories, notices


def check_all(
    strata: Iterable[CaptureHistories], stratify: str | None = None
) -> tuple[list[CaptureHistories], list[Notice]]:
    tables: list[CaptureHistories] = []
    notices: list[Notice] = []
    for histories in strata:
        table, said = check(histories, stratify)
        tables.append(table)
        notices.extend(said)
    return tables, notices
