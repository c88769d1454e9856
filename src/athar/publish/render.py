"""Templates to HTML and PDF (Jinja2 with autoescaping; WeasyPrint for PDF).

Fonts: the PDF asks for Amiri (Debian fonts-hosny-amiri) for Arabic and DejaVu Sans
for Latin; WeasyPrint shapes Arabic with HarfBuzz, so letters join and run right to left.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from athar.publish.labels import label
from athar.vault.fsutil import atomic_write


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("athar.publish", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.globals["label"] = label
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def render_pdf(
    template: str, context: dict[str, Any], out: Path, attachments: dict[str, str]
) -> None:
    import logging

    from PIL import ImageFile

    # Importing WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES, which would
    # let every later decode in this process accept truncated pictures (the verification
    # code refuses to run then): put the setting back as it was.
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML, Attachment  # type: ignore[import-untyped]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    html = render(template, context)
    files = [
        Attachment(string=text, name=name, base_url=None) for name, text in attachments.items()
    ]
    pdf = HTML(string=html, base_url=None).write_pdf(attachments=files)
    assert pdf is not None
    atomic_write(out, pdf)
