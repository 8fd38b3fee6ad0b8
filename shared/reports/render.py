"""HTML templates (Jinja2, autoescaped) → PDF bytes with WeasyPrint (pure: no I/O besides reading the
package's own templates).

A builder states how many pages its document has. Lists and free texts (alarm reasons, notes, log
entries) have no length limit, so :func:`render_pdf` lays the document out with the row caps and
text lengths of :data:`FIT_LEVELS`, generous first, and keeps the first layout with that page
count; the template states how many rows it left out ("N more"). When even the most compact level
does not fit, :class:`PageCountError` is raised: a layout regression fails loudly instead of shipping
a 2-page "1-page" summary.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint import HTML

TEMPLATES = Path(__file__).parent / "templates"


#: Template variable ``lim``: most rows per table and a factor on text lengths, generous first.
FIT_LEVELS: tuple[dict[str, float], ...] = (
    {"transitions": 8, "logs": 5, "recs": 8, "actions": 5, "insights": 4, "text": 1.0},
    {"transitions": 6, "logs": 3, "recs": 6, "actions": 4, "insights": 3, "text": 0.7},
    {"transitions": 4, "logs": 2, "recs": 4, "actions": 3, "insights": 2, "text": 0.45},
)


class PageCountError(RuntimeError):
    """The rendered document does not have the page count its kind promises."""


def svg_img(svg: str | None, css_class: str = "chart") -> Markup:
    """An ``<img>`` carrying the SVG as a data URI (empty when there is no chart)."""
    if not svg:
        return Markup("")
    b64 = base64.b64encode(svg.encode()).decode()
    return Markup('<img class="{}" src="data:image/svg+xml;base64,{}">').format(css_class, Markup(b64))


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["svg"] = svg_img
    return env


ENV = _env()


def render_html(template: str, context: dict[str, Any]) -> str:
    return ENV.get_template(template).render(**context)


def render_pdf(template: str, context: dict[str, Any], pages: int) -> bytes:
    """Render ``template`` with ``context`` to PDF bytes of exactly ``pages`` pages (module doc)."""
    counts = []
    for lim in FIT_LEVELS:
        html = render_html(template, {**context, "lim": lim})
        document = HTML(string=html, base_url=str(TEMPLATES)).render()
        if len(document.pages) == pages:
            return document.write_pdf()
        counts.append(len(document.pages))
    raise PageCountError(f"{template}: layout gave {counts} pages at each fit level, expected {pages}")
