"""Pages from the model: Jinja2 with autoescaping, one environment for the site.

Every value from the records reaches HTML through autoescaping; the only markup built
in Python is the month chart, an SVG made of numbers and escaped labels."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape

from athar.publish.site.figures import Row
from athar.publish.site.model import Incident
from athar.records.vocab import Vocabularies

CHART_W, CHART_H, BAR_GAP = 640, 180, 4


@cache
def site_labels() -> dict[str, dict[str, str]]:
    text = (resources.files("athar.publish.site") / "data" / "labels.json").read_text("utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


def label(key: str, lang: str, **params: object) -> str:
    entry = site_labels()[key]
    return entry.get(lang, entry["en"]).format(**params)


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("athar.publish.site", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{round(value):,}"


def place(incident: Incident, lang: str) -> str:
    order = ("place.name_ar", "place.name_latin")
    for path in order if lang == "ar" else reversed(order):
        if incident.text.get(path):
            return incident.text[path]
    return ""


def month_chart(rows: list[Row], lang: str) -> Markup:
    """Documented killed per month as bars: the minimum solid, up to the maximum pale."""
    rows = [r for r in rows if r.key and r.killed]
    if not rows:
        return Markup("")
    top = max(r.killed.high for r in rows if r.killed) or 1
    width = (CHART_W - BAR_GAP) / len(rows)
    parts = [
        f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H + 30}" role="img" '
        f'aria-label="{escape(label("by.month", lang))}">'
    ]
    for n, row in enumerate(rows if lang == "en" else list(reversed(rows))):
        assert row.killed is not None
        x = BAR_GAP + n * width
        high = CHART_H * row.killed.high / top
        low = CHART_H * row.killed.low / top
        w = max(width - BAR_GAP, 1)
        parts.append(
            f"<g><title>{escape(row.key)}: {escape(row.killed.text())}</title>"
            f'<rect class="high" x="{x:.1f}" y="{CHART_H - high:.1f}" width="{w:.1f}" '
            f'height="{high:.1f}"/>'
            f'<rect class="low" x="{x:.1f}" y="{CHART_H - low:.1f}" width="{w:.1f}" '
            f'height="{low:.1f}"/>'
            f'<text x="{x + w / 2:.1f}" y="{CHART_H + 14}" text-anchor="middle">'
            f"{escape(row.key)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # numbers and escape()d labels only


def render_page(template: str, context: dict[str, Any], vocab: Vocabularies) -> str:
    lang: str = context["lang"]

    def terms(vocabulary: str, ids: list[str]) -> str:
        return (
            "، ".join(vocab.label(vocabulary, i, lang) for i in ids)
            if lang == "ar"
            else (", ".join(vocab.label(vocabulary, i, lang) for i in ids))
        )

    def t(key: str, **params: object) -> str:
        return label(key, lang, **params)

    return (
        environment()
        .get_template(template)
        .render(
            **context,
            t=t,
            terms=terms,
            fmt=fmt,
            place=lambda i: place(i, lang),
        )
    )
