"""Expand the paths a user gives (files, directories, archives) into the data files they hold.

Reading files is the only I/O. Rules:

* a file is taken as given (its format is checked when it is read);
* a directory is walked **recursively**; hidden files and folders (name starting with ``.``) and
  files whose suffix is no recording format (e.g. ``README.md``) are skipped; archives found in it
  are opened;
* an archive (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``) is read like a directory; an archive inside
  an archive is an error;
* the files are sorted by their :attr:`Entry.source`; two files with the same source are an error.
"""

from __future__ import annotations

import contextlib
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

#: Suffix -> format name. Files with no suffix or an all-digit suffix (``2003.10.22.12.06.24``,
#: the NASA/IMS rig files) are ``ascii`` too.
FORMATS = {".npz": "npz", ".csv": "csv", ".wav": "wav", ".txt": "ascii", ".dat": "ascii", ".asc": "ascii"}
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Entry:
    """One data file: where it came from, its own name, its modification time and how to read it.

    ``source`` is unique and shown to users: the file name for a file given as such,
    ``<dir name>/<path inside>`` for a directory's files, ``<archive name>:<member path>`` for an
    archive member. ``name`` is the file's own (base) name; ``mtime`` its modification time (UTC).
    """

    source: str
    name: str
    mtime: datetime
    read: Callable[[], bytes]


def format_of(name: str) -> str | None:
    """The format of a file by its name (``npz``, ``csv``, ``wav``, ``ascii``, ``archive``) or None."""
    low = name.lower()
    if low.endswith(ARCHIVES):
        return "archive"
    suffix = PurePosixPath(low).suffix
    if suffix in FORMATS:
        return FORMATS[suffix]
    if suffix == "" or suffix[1:].isdigit():
        return "ascii"
    return None


def stem_of(name: str) -> str:
    """The file name without its format suffix (``a.csv`` -> ``a``; ``2003.10.22.12.06.24`` unchanged)."""
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in FORMATS else name


def _mtime(seconds: float) -> datetime:
    """A modification time in whole seconds, UTC."""
    return datetime.fromtimestamp(int(seconds), UTC)


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _zip_entries(path: Path, label: str, stack: contextlib.ExitStack) -> list[Entry]:
    try:
        zf = stack.enter_context(zipfile.ZipFile(path))
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{label}: not a readable .zip archive ({exc})") from None
    out = []
    for info in zf.infolist():
        member = PurePosixPath(info.filename)
        if info.is_dir() or _hidden(member.parts) or format_of(member.name) is None:
            continue
        when = datetime(*info.date_time, tzinfo=UTC)  # zip stores local time without a zone: read as UTC
        out.append(Entry(f"{label}:{info.filename}", member.name, when, _reader(zf.read, info.filename)))
    return out


def _tar_entries(path: Path, label: str, stack: contextlib.ExitStack) -> list[Entry]:
    try:
        tf = stack.enter_context(tarfile.open(path))
        members = tf.getmembers()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ValueError(f"{label}: not a readable tar archive ({exc})") from None
    out = []
    for info in members:
        member = PurePosixPath(info.name)
        if not info.isfile() or _hidden(member.parts) or format_of(member.name) is None:
            continue
        out.append(Entry(f"{label}:{info.name}", member.name, _mtime(info.mtime), _tar_reader(tf, info)))
    return out


def _reader(read: Callable[[str], bytes], name: str) -> Callable[[], bytes]:
    return lambda: read(name)


def _tar_reader(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        fh = tf.extractfile(info)
        if fh is None:
            raise ValueError(f"{info.name}: not a regular file")
        return fh.read()

    return read


def _archive_entries(path: Path, label: str, stack: contextlib.ExitStack) -> list[Entry]:
    entries = (_zip_entries if path.name.lower().endswith(".zip") else _tar_entries)(path, label, stack)
    nested = [e.source for e in entries if format_of(e.name) == "archive"]
    if nested:
        raise ValueError(f"{nested[0]}: archives inside an archive are not read; unpack it first")
    return entries


def _file_entry(path: Path, label: str) -> Entry:
    return Entry(label, path.name, _mtime(path.stat().st_mtime), path.read_bytes)


def _dir_entries(root: Path, stack: contextlib.ExitStack) -> list[Entry]:
    out: list[Entry] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _hidden(rel.parts):
            continue
        kind = format_of(path.name)
        label = f"{root.name}/{rel.as_posix()}"
        if kind == "archive":
            out.extend(_archive_entries(path, label, stack))
        elif kind is not None:
            out.append(_file_entry(path, label))
    return out


def _path_entries(path: Path, stack: contextlib.ExitStack) -> list[Entry]:
    if path.is_dir():
        return _dir_entries(path, stack)
    if not path.is_file():
        raise ValueError(f"{path}: no such file or directory")
    kind = format_of(path.name)
    if kind == "archive":
        return _archive_entries(path, path.name, stack)
    if kind is None:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; expected .npz, .csv, .wav, a whitespace-"
            "separated text file (.txt, .dat, .asc, no suffix) or an archive (.zip, .tar, .tar.gz)"
        )
    return [_file_entry(path, path.name)]


def entries(paths: Sequence[Path], stack: contextlib.ExitStack) -> list[Entry]:
    """The data files under ``paths``, sorted by source; archives stay open until ``stack`` closes.

    Raises ``ValueError`` for a missing path, an unreadable archive, a file of unknown type given by
    name, two files with the same source, or when there is no data file at all.
    """
    found = sorted((e for p in paths for e in _path_entries(Path(p), stack)), key=lambda e: e.source)
    for a, b in zip(found, found[1:], strict=False):
        if a.source == b.source:
            raise ValueError(f"{a.source}: given twice (two files of that name); pass their folder instead")
    if not found:
        shown = ", ".join(str(p) for p in paths) or "(no paths)"
        raise ValueError(f"{shown}: no recording files (.npz, .csv, .wav, text) found")
    return found
