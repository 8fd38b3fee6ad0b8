"""The service table of docs/ARCHITECTURE.md, generated from the services' declared routes.

``python -m scripts.architecture`` prints the table; ``--write`` replaces the part of
docs/ARCHITECTURE.md between the ``<!-- services:begin -->`` and ``<!-- services:end -->`` markers;
``--check`` exits 1 when the document differs from the code (``tests/test_architecture.py`` runs it).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.run import SERVICES  # noqa: E402
from shared import topics  # noqa: E402
from shared.service import Service  # noqa: E402
from shared.settings import Settings  # noqa: E402

DOC = ROOT / "docs" / "ARCHITECTURE.md"
BEGIN, END = "<!-- services:begin -->", "<!-- services:end -->"


def short(topic_filter: str) -> str:
    """A filter without the ``rotorwatch/v1/`` root, as the document writes topics; a per-process
    requester id (``reply/gateway-1a2b3c4d/+``) is written ``reply/<requester>/+``."""
    prefix = topics.ROOT + "/"
    f = topic_filter[len(prefix) :] if topic_filter.startswith(prefix) else topic_filter
    return re.sub(r"^reply/[^/]+/", "reply/<requester>/", f)


def declared() -> Iterator[tuple[str, Service]]:
    """``(process name, service)`` for every launcher entry whose package declares ``build``."""
    with tempfile.TemporaryDirectory() as tmp:
        # development: the services' secrets (e.g. the model signing key) are generated in ``tmp``.
        settings = Settings(data_dir=Path(tmp), mqtt_url="mqtt://127.0.0.1:1", rotorwatch_env="development")
        for name, module, args in SERVICES:
            mod = importlib.import_module(f"{module}.service")
            build = getattr(mod, "build", None)
            if build is None:
                continue
            yield name, build(settings, list(args))


def table() -> str:
    """One row per process: its subscriptions (filter → message model) and what it publishes."""
    rows = ["| process | subscribes (topic filter → message) | publishes |", "|---|---|---|"]
    for name, svc in declared():
        subs = "<br>".join(f"`{short(r.filter)}` → `{r.model_name}`" for r in svc.routes)
        pubs = "<br>".join(f"`{p}`" for p in svc.publishes) or "—"
        rows.append(f"| `{name}` | {subs} | {pubs} |")
    return "\n".join(rows)


def render(doc: str) -> str:
    """``doc`` with the generated table between the markers (ValueError when they are missing)."""
    try:
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"{DOC.name}: markers {BEGIN} ... {END} not found") from None
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="update docs/ARCHITECTURE.md")
    g.add_argument("--check", action="store_true", help="exit 1 when docs/ARCHITECTURE.md is out of date")
    a = p.parse_args(argv)
    if not (a.write or a.check):
        print(table())
        return 0
    doc = DOC.read_text()
    new = render(doc)
    if a.write:
        DOC.write_text(new)
        return 0
    if new != doc:
        print(f"{DOC} is out of date: run `python -m scripts.architecture --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
