"""The report builders by kind (imported when first used) and what a reply says of a document.

Builders are pure (:class:`~shared.reports.data.ReportData` → bytes): ``executive`` and ``industrial``
PDFs (WeasyPrint), the ``excel`` workbook (XlsxWriter). A document travels base64 in parts
(:class:`~shared.messages.commands.ReplyPart`) of :func:`part_chars` characters each.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.messages import to_utc
from shared.reports.data import ReportData, ReportKind

Builder = Callable[[ReportData], bytes]

#: Most base64 characters one part message carries (1 MiB).
PART_CHARS = 1024 * 1024
#: Bytes a part message holds beyond its base64 (JSON keys, correlation id, index, count).
PART_OVERHEAD = 512

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Kind:
    """One report kind: where its builder lives, file extension and content type."""

    module: str
    function: str
    extension: str
    content_type: str


KINDS: dict[str, Kind] = {
    "executive": Kind("shared.reports.executive", "build_executive", "pdf", PDF),
    "industrial": Kind("shared.reports.industrial", "build_industrial", "pdf", PDF),
    "excel": Kind("shared.reports.excel", "build_workbook", "xlsx", XLSX),
}


def load_builder(kind: ReportKind) -> Builder:
    """The builder of ``kind``, imported now (a missing builder raises ImportError/AttributeError)."""
    k = KINDS[kind]
    builder: Builder = getattr(importlib.import_module(k.module), k.function)
    return builder


def filename(asset_id: str, kind: str, generated_at: datetime) -> str:
    """``<asset>_<kind>_<UTC yyyymmddTHHMMSSZ>.<ext>`` (asset ids are file-name safe: ASSET_ID_PATTERN)."""
    return f"{asset_id}_{kind}_{to_utc(generated_at):%Y%m%dT%H%M%SZ}.{KINDS[kind].extension}"


def sha256(doc: bytes) -> str:
    return hashlib.sha256(doc).hexdigest()


_STREAM = re.compile(rb"/Type\s*/ObjStm[^>]*>>\s*stream\r?\n(.*?)endstream", re.S)
_PAGES = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b")


def pdf_pages(doc: bytes) -> int | None:
    """Page count of a PDF: the ``/Count`` of its page tree's root (the largest ``/Pages`` node),
    looked up in the file and in its compressed object streams; ``None`` when none is found."""
    texts = [doc]
    for m in _STREAM.finditer(doc):
        try:
            texts.append(zlib.decompress(m.group(1)))
        except zlib.error:
            continue
    counts = [int(a or b) for t in texts for a, b in _PAGES.findall(t)]
    return max(counts) if counts else None


def part_chars(max_payload_bytes: int) -> int:
    """Base64 characters per part: at most :data:`PART_CHARS` and few enough that the part message
    (plus :data:`PART_OVERHEAD`) stays within ``max_payload_bytes``; a multiple of 4, at least 4."""
    room = min(PART_CHARS, max_payload_bytes - PART_OVERHEAD)
    return max(4, room - room % 4)
