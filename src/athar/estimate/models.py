"""Which log-linear models exist: hierarchical models with all main effects and any set of
two-way interactions, their design matrices, names, and the --interactions syntax.

A two-way interaction A:B lets lists A and B be dependent (a family that reports to one
group is more, or less, likely to report to the other). Three-way and higher terms are
left out: with the unobserved cell unknown, the highest-order term is never identifiable,
and with three lists the model with every pair already uses every degree of freedom.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from athar.errors import InputError

Pair = tuple[int, int]
MAX_MODELS = 1024  # every model over 5 lists; 6 lists would be 32,768


@dataclass(frozen=True, order=True)
class Model:
    """Main effects of every list plus these pairs (i < j, sorted)."""

    pairs: tuple[Pair, ...] = ()

    def labels(self, lists: Sequence[str]) -> list[str]:
        return [f"{lists[i]}:{lists[j]}" for i, j in self.pairs]

    def name(self, lists: Sequence[str]) -> str:
        """The --interactions text that fits this model ("" is independence)."""
        return ",".join(self.labels(lists))

    def n_params(self, n_lists: int) -> int:
        return 1 + n_lists + len(self.pairs)


def design(patterns: NDArray[np.int8], model: Model) -> NDArray[np.float64]:
    """Columns: intercept, one per list, one per pair (product of the two lists)."""
    x = patterns.astype(np.float64)
    columns = [np.ones((x.shape[0], 1)), x]
    if model.pairs:
        first = np.array([i for i, _ in model.pairs])
        second = np.array([j for _, j in model.pairs])
        columns.append(x[:, first] * x[:, second])
    return np.hstack(columns)


def all_pairs(n_lists: int) -> list[Pair]:
    return list(itertools.combinations(range(n_lists), 2))


def model_count(n_lists: int) -> int:
    return int(2 ** len(all_pairs(n_lists)))


def all_models(n_lists: int, allowed: Sequence[Pair] | None = None) -> list[Model]:
    """Every set of pairs (among *allowed*), smallest first."""
    pairs = all_pairs(n_lists) if allowed is None else sorted(allowed)
    count = 2 ** len(pairs)
    if count > MAX_MODELS:
        raise InputError(
            "with {lists} lists there are {models} models to compare, too many to fit one "
            "by one; give the model with --interactions, or use --method lcmcr",
            lists=n_lists,
            models=count,
        )
    return [
        Model(tuple(chosen))
        for size in range(len(pairs) + 1)
        for chosen in itertools.combinations(pairs, size)
    ]


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip()).casefold()


def parse_interactions(
    text: str | Sequence[tuple[str, str]], lists: Sequence[str], all_lists: Sequence[str] = ()
) -> Model:
    """``"A:B,C:D"`` (or pairs of names) as a model over *lists*; ``""`` is independence.
    *all_lists* names lists of the file that a stratum lacks, for a clearer refusal."""
    if isinstance(text, str):
        items = [item for item in text.split(",") if item.strip()]
        named: list[tuple[str, str]] = []
        for item in items:
            parts = item.split(":")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise InputError(
                    "{item} is not a pair of lists; write interactions as A:B,C:D",
                    item=item.strip(),
                )
            named.append((parts[0], parts[1]))
    else:
        named = [(a, b) for a, b in text]
    index = {_key(name): j for j, name in enumerate(lists)}
    elsewhere = {_key(name) for name in all_lists}
    pairs: set[Pair] = set()
    for first, second in named:
        found: list[int] = []
        for name in (first, second):
            if _key(name) not in index:
                if _key(name) in elsewhere:
                    raise InputError(
                        "list {name} records no one here, so it cannot be in --interactions",
                        name=name.strip(),
                    )
                raise InputError(
                    "unknown list {name} in --interactions; the lists are {lists}",
                    name=name.strip(),
                    lists=", ".join(lists),
                )
            found.append(index[_key(name)])
        i, j = sorted(found)
        if i == j:
            raise InputError(
                "the interaction {pair} pairs a list with itself", pair=f"{first}:{second}"
            )
        pairs.add((i, j))
    return Model(tuple(sorted(pairs)))
