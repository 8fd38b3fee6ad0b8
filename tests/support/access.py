"""What each process needs from the broker, derived from its declared routes and publishes.

The expectations of the ACL tests come from here, never from ``deploy/mqtt_auth.py``: each service's
route filters (what it must be able to receive) and its declared publish templates (what it must be
able to publish), in the architecture document's vocabulary (``scripts/architecture.py``), plus what
the runner publishes for every process (``status/<p>``, a replica's ``status/<p>/<replica>``,
``deadletter/<p>``, ``sync/<p>/<token>``).
Templates are made concrete with one sample value per placeholder, so "exactly what it needs" can be
checked on a finite set of sample topics: every topic some process publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from deploy.mqtt_acl import topic_matches
from scripts import architecture
from shared import topics

#: One value per placeholder of the document's topic templates (sample topics, route filters).
SAMPLES = {"<a>": "motor_01", "<requester>": "gateway-1", "<id>": "c1", "<token>": "t1", "<replica>": "p0of2"}
#: Any value: what a declared publish template allows (``state/<a>`` → ``state/+``).
ANY = dict.fromkeys(SAMPLES, "+")
#: A device user of the tests and its asset (not the sample asset, so it must be refused there).
DEVICE_USER, DEVICE_ASSET = "pump_dev", "pump_07"


def expand(template: str, values: dict[str, str] = SAMPLES) -> list[str]:
    """``cmd/{a,b} (note)`` → ``[<root>/cmd/a, <root>/cmd/b]``; placeholders replaced by ``values``."""
    template = re.sub(r"\s*\(.*\)$", "", template.strip())
    m = re.search(r"\{([^}]*)\}", template)
    if m:
        return [
            t for alt in m.group(1).split(",") for t in expand(template.replace(m.group(0), alt, 1), values)
        ]
    for k, v in values.items():
        template = template.replace(k, v)
    if "<" in template:
        raise ValueError(f"unknown placeholder in {template!r}")
    return [f"{topics.ROOT}/{template}"]


@dataclass(frozen=True)
class Needs:
    """One process: its route filters (placeholders → samples) and what it may publish (filters:
    placeholders → ``+``)."""

    process: str
    receives: tuple[str, ...]
    publishes: tuple[str, ...]

    def declares(self, topic: str) -> bool:
        return any(topic_matches(p, topic) for p in self.publishes)


#: ``status/{p}/<replica>``: a replica of a partitioned stage (shared.partition.status_name).
RUNNER = ("status/{p}", "status/{p}/<replica>", "deadletter/{p}", "sync/{p}/<token>")


def runner_templates(process: str) -> list[str]:
    """What the runner publishes for every process (its ``sync/<p>/+`` markers it also receives)."""
    return [r.format(p=process) for r in RUNNER]


@cache
def needs() -> tuple[Needs, ...]:
    out = []
    for name, svc in architecture.declared():
        filters = [f for r in svc.routes for f in expand(architecture.short(r.filter))]
        filters += expand(f"sync/{name}/+")
        templates = [*svc.publishes, *runner_templates(name)]
        pubs = [f for p in templates for f in expand(p, ANY)]
        out.append(Needs(name, tuple(dict.fromkeys(filters)), tuple(dict.fromkeys(pubs))))
    return tuple(out)


def device_topics(asset: str) -> list[str]:
    return [topics.raw_simple(asset), topics.raw_vibration(asset)]


@cache
def sample_topics() -> tuple[str, ...]:
    """Every topic some process publishes (with the sample values), plus raw input for the device's
    asset."""
    templates = [p for _, svc in architecture.declared() for p in svc.publishes]
    templates += [t for name, _ in architecture.declared() for t in runner_templates(name)]
    every = [t for p in templates for t in expand(p)] + device_topics(DEVICE_ASSET)
    return tuple(dict.fromkeys(every))
