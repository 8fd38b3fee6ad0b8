"""HTML templates (Jinja2, autoescaped) → PDF bytes with WeasyPrint (pure: no I/O besides reading the
package's own templates).

A builder states how many pages its document has; :func:`render_pdf` raises
:class:`PageCountError` when the layout gives another count, so a layout regression fails loudly
instead of shipping a 2-page "1-page" summary.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint import HTML

TEMPLATES = Path(__file__).parent / "templates"


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
    """Render ``template`` with ``context`` to PDF bytes of exactly ``pages`` pages."""
    html = render_html(template, context)
    document = HTML(string=html, base_url=str(TEMPLATES)).render()
    if len(document.pages) != pages:
        raise PageCountError(f"{template}: layout gave {len(document.pages)} pages, expected {pages}")
    return document.write_pdf()
