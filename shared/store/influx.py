"""InfluxDB adapter of :class:`~shared.store.base.Store`, via the v1-compatible HTTP API.

Works with InfluxDB 1.x (``/write``, ``/query``) and with 2.x/3.x through their v1 compatibility
endpoints. Writes use line protocol at nanosecond precision; reads use InfluxQL with **bound
parameters** (``params=`` JSON): user input (asset ids, tag values, times) is never formatted into a
query. Identifiers (measurement and tag names) are validated against ``NAME_RE`` before being quoted.

Mapping: ``asset_id`` and the point's extra tags are Influx tags; fields are fields (floats written as
floats, bools as ``true``/``false``, strings quoted). InfluxDB itself makes writes idempotent: a point
with the same measurement, tag set and timestamp replaces the earlier one's fields.

Auth: ``INFLUX_TOKEN`` sends ``Authorization: Token <t>`` (2.x/3.x v1 compatibility); otherwise
``INFLUX_USERNAME``/``INFLUX_PASSWORD`` are sent as HTTP basic auth (1.x).

Differences from SQLite worth knowing:

* :meth:`InfluxStore.count` sums, per series, the largest per-field count (InfluxDB has no row
  count). It is exact when every point of a series carries at least one common field, which holds for
  every measurement ``shared.records`` writes (each has ``event_id`` or ``state``).
* Rewriting a point with a *different* field set merges the field sets (InfluxDB semantics); SQLite
  replaces the whole row. Rewrites of the same message (the historian's case) are identical.
* :meth:`InfluxStore.delete_asset` uses ``DROP SERIES``; InfluxDB 2.x's v1 API lacks it, so there the
  adapter falls back to ``POST /api/v2/delete`` (needs ``INFLUX_TOKEN`` and ``INFLUX_ORG``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from shared.settings import Settings
from shared.store.base import FieldValue, Point, Store, StoreError, StoreUnavailable
from shared.store.checks import check_asset, check_measurement, check_range, check_tags, normalise_fields

#: Lines per ``/write`` request.
CHUNK_LINES = 5_000
DATABASE_RE = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")
_TIME_MIN = "1677-09-21T00:12:43.145224194Z"
_TIME_MAX = "2262-04-11T23:47:16.854775806Z"


# --- line protocol ------------------------------------------------------------------------------
def _escape_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _escape_key(s: str) -> str:
    """Tag keys, tag values and field keys: escape backslash, comma, equals sign and space."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field_value(v: FieldValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(float(v))  # a float literal (no ``i`` suffix), e.g. 1.0, 2.5e-07


def line_protocol(point: Point) -> str:
    """One point as a line of InfluxDB line protocol (validated first; raises :class:`StoreError`)."""
    fields = normalise_fields(point)
    tags = {"asset_id": point.asset_id, **point.tags}
    tag_part = ",".join(f"{_escape_key(k)}={_escape_key(tags[k])}" for k in sorted(tags))
    field_part = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in fields.items())
    return f"{_escape_measurement(point.measurement)},{tag_part} {field_part} {point.ts_ns}"


def _quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chunks(lines: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(lines), n):
        yield lines[i : i + n]


def _tagkey(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"))


class InfluxStore(Store):
    """Points in one InfluxDB database (1.x) or bucket (2.x/3.x, via its v1 DBRP mapping)."""

    def __init__(
        self,
        url: str,
        database: str = "sensor_data",
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        org: str | None = None,
        timeout_s: float = 30.0,
        chunk_lines: int = CHUNK_LINES,
    ) -> None:
        if not DATABASE_RE.match(database):
            raise StoreError(f"invalid InfluxDB database/bucket name {database!r}")
        if chunk_lines < 1:
            raise ValueError(f"chunk_lines must be >= 1, got {chunk_lines}")
        self.url = url.rstrip("/")
        self.database = database
        self.org = org
        self.token = token
        self.chunk_lines = chunk_lines
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if (username and not token) else None
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )
        self._db_ready = False
        self._db_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxStore:
        if not settings.influx_url:
            raise StoreError("INFLUX_URL is not set")
        return cls(
            settings.influx_url,
            settings.influx_bucket,
            token=settings.influx_token,
            username=settings.influx_username,
            password=settings.influx_password,
            org=settings.influx_org,
        )

    # -- HTTP ------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request. Connection errors and 5xx raise StoreUnavailable, other 4xx StoreError."""
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {reason}") from exc
        if r.status_code >= 500:
            raise StoreUnavailable(f"InfluxDB {r.status_code}: {_error_text(r)}")
        if r.status_code >= 400:
            raise StoreError(f"InfluxDB {r.status_code}: {_error_text(r)}")
        return r

    def _query(self, q: str, params: Mapping[str, Any] | None = None, *, ensure: bool = True) -> list[dict]:
        """Run InfluxQL (POST, so that DDL works too); return the statements' results."""
        if ensure:
            self._ensure_db()
        data = {"q": q, "db": self.database, "epoch": "ns"}
        if params:
            data["params"] = json.dumps(dict(params))
        body = self._request("POST", "/query", data=data).json()
        if "error" in body:
            raise StoreError(f"InfluxDB: {body['error']}")
        results: list[dict] = body.get("results", [])
        for res in results:
            if "error" in res:
                raise StoreError(f"InfluxDB: {res['error']}")
        return results

    def _ensure_db(self) -> None:
        """``CREATE DATABASE`` once (1.x). 2.x/3.x refuse it, which is fine: the bucket must exist."""
        if self._db_ready:
            return
        with self._db_lock:
            if self._db_ready:
                return
            try:
                self._query(f"CREATE DATABASE {_quote_ident(self.database)}", ensure=False)
            except StoreUnavailable:
                raise
            except StoreError:
                pass
            self._db_ready = True

    # -- Store -----------------------------------------------------------------------------------
    def write(self, points: Sequence[Point]) -> None:
        lines = [line_protocol(p) for p in points]  # validate everything before sending anything
        if not lines:
            return
        self._ensure_db()
        for chunk in _chunks(lines, self.chunk_lines):
            body = "\n".join(chunk).encode()
            try:
                self._post_write(body)
            except StoreError as exc:
                if isinstance(exc, StoreUnavailable) or "database not found" not in str(exc):
                    raise
                self._db_ready = False  # dropped behind our back: create again, retry once
                self._ensure_db()
                self._post_write(body)

    def _post_write(self, body: bytes) -> None:
        self._request(
            "POST",
            "/write",
            params={"db": self.database, "precision": "ns"},
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    @staticmethod
    def _where(
        asset_id: str, start_ns: int | None, end_ns: int | None, tags: Mapping[str, str] | None
    ) -> tuple[str, dict[str, Any]]:
        check_asset(asset_id)
        clean_tags = check_tags(tags)
        where = '"asset_id" = $asset'
        params: dict[str, Any] = {"asset": asset_id}
        if start_ns is not None:
            where += " AND time >= $start"
            params["start"] = start_ns
        if end_ns is not None:
            where += " AND time < $end"
            params["end"] = end_ns
        for i, (k, v) in enumerate(sorted(clean_tags.items())):
            where += f" AND {_quote_ident(k)} = $t{i}"
            params[f"t{i}"] = v
        return where, params

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
        check_measurement(measurement)
        check_range(start_ns, end_ns, limit)
        where, params = self._where(asset_id, start_ns, end_ns, tags)
        if limit == 0:  # InfluxQL's LIMIT 0 means "no limit"
            return []
        order = "DESC" if newest else "ASC"
        q = f"SELECT * FROM {_quote_ident(measurement)} WHERE {where} GROUP BY * ORDER BY time {order}"
        if limit is not None:
            q += f" LIMIT {int(limit)}"  # per series; the merged result is cut below
        out: list[tuple[int, str, Point]] = []
        for res in self._query(q, params):
            for series in res.get("series", []):
                ptags = {k: v for k, v in (series.get("tags") or {}).items() if k != "asset_id" and v != ""}
                tagkey = _tagkey(ptags)
                cols = series["columns"]
                for row in series.get("values", []):
                    pairs = zip(cols[1:], row[1:], strict=True)
                    fields = {c: _from_json(v) for c, v in pairs if v is not None}
                    if fields:
                        ts = int(row[0])
                        out.append((ts, tagkey, Point(measurement, asset_id, ts, fields, ptags)))
        out.sort(key=lambda t: (t[0], t[1]), reverse=newest)
        if limit is not None:
            out = out[:limit]
        if newest:
            out.reverse()
        return [p for _, _, p in out]

    def count(
        self, measurement: str, asset_id: str, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> int:
        check_measurement(measurement)
        check_range(start_ns, end_ns, None)
        where, params = self._where(asset_id, start_ns, end_ns, None)
        q = f"SELECT COUNT(*) FROM {_quote_ident(measurement)} WHERE {where} GROUP BY *"
        total = 0
        for res in self._query(q, params):
            for series in res.get("series", []):
                for row in series.get("values", []):
                    total += max((int(v) for v in row[1:] if v is not None), default=0)
        return total

    def assets(self) -> list[str]:
        found: set[str] = set()
        for res in self._query('SHOW TAG VALUES WITH KEY = "asset_id"'):
            for series in res.get("series", []):
                for row in series.get("values", []):
                    found.add(str(row[1]))
        return sorted(found)

    def delete_asset(self, asset_id: str) -> None:
        check_asset(asset_id)
        try:
            self._query('DROP SERIES WHERE "asset_id" = $asset', {"asset": asset_id})
        except StoreUnavailable:
            raise
        except StoreError:
            if not (self.token and self.org):
                raise
            # InfluxDB 2.x: the v1 API has no DROP SERIES; use the v2 delete API. The asset id matched
            # ASSET_ID_PATTERN above, so it cannot break out of the predicate's quotes.
            self._request(
                "POST",
                "/api/v2/delete",
                params={"org": self.org, "bucket": self.database},
                json={"start": _TIME_MIN, "stop": _TIME_MAX, "predicate": f'asset_id="{asset_id}"'},
            )

    def ping(self) -> bool:
        try:
            r = self._http.get("/ping", timeout=5.0)
        except httpx.HTTPError:
            return False
        return r.status_code in (200, 204)

    def close(self) -> None:
        self._http.close()


def _from_json(v: Any) -> FieldValue:
    """InfluxDB returns whole floats as JSON integers (``1`` for ``1.0``); the contract says floats."""
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int | float):
        return float(v)
    raise StoreError(f"unexpected value from InfluxDB: {v!r}")


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
        if isinstance(body, dict) and body.get("message"):  # 2.x
            return str(body["message"])
    except ValueError:
        pass
    return r.text.strip()[:500] or r.reason_phrase
