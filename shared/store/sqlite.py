"""SQLite adapter of :class:`~shared.store.base.Store` (WAL mode, safe for several processes).

Layout: one row per point in ``points`` with the point's identity as the primary key
``(measurement, asset_id, ts_ns, tagkey)`` (``tagkey`` is the canonical JSON of the tags, ``{}`` when
there are none) and its fields as one compact JSON object. ``INSERT OR REPLACE`` on that key makes
writes idempotent. A small ``series`` table remembers which assets have data in which measurement so
that :meth:`SqliteStore.assets` does not scan every point.

Several processes share the file (the historian writes, the gateway and calibrator read): WAL lets
readers run beside the one writer, and ``busy_timeout`` makes a writer wait for another's lock instead
of failing at once. A lock still held after the timeout surfaces as :class:`StoreUnavailable`
(retryable).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.store.base import Point, Store, StoreError, StoreUnavailable
from shared.store.checks import check_asset, check_measurement, check_range, check_tags, normalise_fields

BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    ts_ns       INTEGER NOT NULL,
    tagkey      TEXT NOT NULL,
    fields      TEXT NOT NULL,
    PRIMARY KEY (measurement, asset_id, ts_ns, tagkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    asset_id    TEXT NOT NULL,
    measurement TEXT NOT NULL,
    PRIMARY KEY (asset_id, measurement)
) WITHOUT ROWID;
"""


def _tagkey(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"))


class SqliteStore(Store):
    """Points in one SQLite file (created with its parent directories on first use)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                check_same_thread=False,
                isolation_level=None,  # autocommit; transactions are explicit
                timeout=busy_timeout_ms / 1000,
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc

    # -- helpers ---------------------------------------------------------------------------------
    def _run(self, fn: Any) -> Any:
        """Run ``fn(conn)`` under the lock, mapping SQLite errors to store errors."""
        with self._lock:
            try:
                return fn(self._db)
            except sqlite3.OperationalError as exc:  # locked, busy, disk I/O: may pass
                raise StoreUnavailable(f"SQLite: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite: {exc}") from exc

    @staticmethod
    def _where(
        measurement: str,
        asset_id: str,
        start_ns: int | None,
        end_ns: int | None,
        tags: Mapping[str, str] | None,
    ) -> tuple[str, list[Any]]:
        check_measurement(measurement)
        check_asset(asset_id)
        clean_tags = check_tags(tags)
        sql = "measurement = ? AND asset_id = ?"
        args: list[Any] = [measurement, asset_id]
        if start_ns is not None:
            sql += " AND ts_ns >= ?"
            args.append(start_ns)
        if end_ns is not None:
            sql += " AND ts_ns < ?"
            args.append(end_ns)
        for k, v in clean_tags.items():
            sql += " AND json_extract(tagkey, ?) = ?"
            args += [f'$."{k}"', v]
        return sql, args

    # -- Store -----------------------------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> None:
        rows = []
        series = set()
        for p in points:
            fields = normalise_fields(p)
            rows.append(
                (
                    p.measurement,
                    p.asset_id,
                    p.ts_ns,
                    _tagkey(p.tags),
                    json.dumps(fields, separators=(",", ":"), allow_nan=False),
                )
            )
            series.add((p.asset_id, p.measurement))
        if not rows:
            return

        def tx(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?)", rows)
                db.executemany("INSERT OR IGNORE INTO series VALUES (?, ?)", sorted(series))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        self._run(tx)

    def query(
        self,
        measurement: str,
        asset_id: str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
        newest: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        check_range(start_ns, end_ns, limit)
        where, args = self._where(measurement, asset_id, start_ns, end_ns, tags)
        order = "DESC" if newest else "ASC"
        sql = f"SELECT ts_ns, tagkey, fields FROM points WHERE {where} ORDER BY ts_ns {order}, tagkey {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._run(lambda db: db.execute(sql, args).fetchall())
        if newest:
            rows.reverse()
        return [
            Point(measurement, asset_id, int(ts), json.loads(fields), json.loads(tagkey))
            for ts, tagkey, fields in rows
        ]

    def count(
        self, measurement: str, asset_id: str, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> int:
        check_range(start_ns, end_ns, None)
        where, args = self._where(measurement, asset_id, start_ns, end_ns, None)
        row = self._run(lambda db: db.execute(f"SELECT COUNT(*) FROM points WHERE {where}", args).fetchone())
        return int(row[0])

    def assets(self) -> list[str]:
        rows = self._run(lambda db: db.execute("SELECT DISTINCT asset_id FROM series ORDER BY 1").fetchall())
        return [r[0] for r in rows]

    def delete_asset(self, asset_id: str) -> None:
        check_asset(asset_id)

        def tx(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                measurements = [
                    r[0] for r in db.execute("SELECT measurement FROM series WHERE asset_id = ?", (asset_id,))
                ]
                for m in measurements:
                    db.execute("DELETE FROM points WHERE measurement = ? AND asset_id = ?", (m, asset_id))
                db.execute("DELETE FROM series WHERE asset_id = ?", (asset_id,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        self._run(tx)

    def ping(self) -> bool:
        try:
            self._run(lambda db: db.execute("SELECT 1").fetchone())
            return True
        except StoreError:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()
