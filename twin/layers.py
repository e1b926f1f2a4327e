"""Typed appenders for the twin layers: validate rows against :mod:`twin.schemas`, reject bad ones with a reason.

Rows come from many places (stream actors, patrol phones, SOS poles, spreadsheets of risk points), so every
row is checked before it reaches a layer table: unknown fields, wrong types, missing required values, values
outside an enum or a numeric range, and cross-field rules (a fixed risk point needs its fixed date, a
confirmed alert needs who confirmed it, ...). A bad row is not appended; its :class:`Rejection` says which
row, which field and why. Bulk input (a million GPS pings) goes through :func:`validate_table`, which checks
whole Arrow columns at once; row input is converted value by value and then takes the same column checks.

:class:`TwinState` holds one city's layer tables in memory; :mod:`twin.snapshots` writes it to the store.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from twin.schemas import KEYS, LAYERS, bounds, enum_values, schema


@dataclass(frozen=True)
class Rejection:
    """Why one input row was not appended: its index in the input, the field at fault and the reason."""

    layer: str
    row: int
    field: str
    reason: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.layer} row {self.row}: field {self.field!r}: {self.reason} (got {self.value!r})"


class LayerError(ValueError):
    """Rows were rejected in strict mode; ``rejections`` lists them all."""

    def __init__(self, layer: str, rejections: list[Rejection]):
        self.layer = layer
        self.rejections = rejections
        head = "; ".join(str(r) for r in rejections[:5])
        more = f" (and {len(rejections) - 5} more)" if len(rejections) > 5 else ""
        rows = len({r.row for r in rejections})
        super().__init__(f"{rows} row(s) rejected in layer {layer!r} ({len(rejections)} faults): {head}{more}")


@dataclass
class AppendResult:
    """Accepted rows as a table of the layer's schema, plus the rejections of the others."""

    layer: str
    table: pa.Table
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many rows were accepted."""
        return self.table.num_rows

    @property
    def rejected_rows(self) -> list[int]:
        """Indices (in the input) of the rejected rows, sorted, each once."""
        return sorted({r.row for r in self.rejected})


class _Bad(ValueError):
    pass


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _to_utc(v: Any) -> dt.datetime:
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad("not an ISO-8601 time (e.g. 2021-12-01T08:00:00+07:00)") from None
    elif hasattr(v, "to_pydatetime"):  # pandas.Timestamp
        v = v.to_pydatetime()
    elif isinstance(v, int) and not isinstance(v, bool):
        return dt.datetime.fromtimestamp(v / 1000, tz=dt.UTC)
    if not isinstance(v, dt.datetime):
        raise _Bad("expected a time: timezone-aware datetime, ISO-8601 string or epoch milliseconds")
    if v.tzinfo is None:
        raise _Bad("time has no timezone: give UTC or an offset (Thailand is +07:00)")
    return v.astimezone(dt.UTC)


def _to_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            raise _Bad("not an ISO date (YYYY-MM-DD)") from None
    raise _Bad("expected a date (datetime.date or YYYY-MM-DD)")


def _convert(typ: pa.DataType, v: Any) -> Any:
    """One Python value converted for an Arrow type, or _Bad with the reason."""
    v = _scalar(v)
    if pa.types.is_string(typ):
        if not isinstance(v, str):
            raise _Bad(f"expected text, got {type(v).__name__}")
        return str(v)
    if pa.types.is_floating(typ):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _Bad(f"expected a number, got {type(v).__name__}")
        if not math.isfinite(v):
            raise _Bad("not a finite number")
        return float(v)
    if pa.types.is_integer(typ):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"expected an integer, got {type(v).__name__}")
        return v
    if pa.types.is_boolean(typ):
        if not isinstance(v, bool):
            raise _Bad(f"expected true/false, got {type(v).__name__}")
        return v
    if pa.types.is_timestamp(typ):
        return _to_utc(v)
    if pa.types.is_date(typ):
        return _to_date(v)
    if pa.types.is_binary(typ):
        if hasattr(v, "wkb"):  # a shapely geometry
            return v.wkb
        if not isinstance(v, bytes | bytearray):
            raise _Bad("expected bytes (WKB) or a shapely geometry")
        return bytes(v)
    if pa.types.is_list(typ):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, list | tuple):
            raise _Bad("expected a list")
        out = []
        for i, x in enumerate(v):
            if x is None:
                out.append(None)
                continue
            try:
                out.append(_convert(typ.value_type, x))
            except _Bad as e:
                raise _Bad(f"item {i}: {e}") from None
        return out
    return v


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    v = _scalar(v)
    return (isinstance(v, float) and math.isnan(v)) or v is pd.NaT


# ---- column checks shared by row and table input ------------------------------------------------------------

Check = Callable[[pa.Table], list[tuple[np.ndarray, str, str]]]


def _mask(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _col(t: pa.Table, name: str) -> pa.ChunkedArray:
    return t.column(name)


def _risk_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    st = _col(t, "status")
    sched, fixed, rep = _col(t, "scheduled_date"), _col(t, "fixed_date"), _col(t, "reported_date")
    return [
        (_mask(pc.and_(pc.is_in(st, pa.array(["scheduled", "fixed"])), pc.is_null(sched))), "scheduled_date",
         "a scheduled or fixed risk point needs its scheduled_date"),
        (_mask(pc.and_(pc.equal(st, "fixed"), pc.is_null(fixed))), "fixed_date",
         "a fixed risk point needs its fixed_date"),
        (_mask(pc.and_(pc.equal(st, "reported"), pc.is_valid(fixed))), "fixed_date",
         "status is still 'reported' but a fixed_date is set: set status to 'fixed'"),
        (_mask(pc.less(sched, rep)), "scheduled_date", "scheduled before it was reported"),
        (_mask(pc.less(fixed, rep)), "fixed_date", "fixed before it was reported"),
    ]


def _alert_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    decided = pc.not_equal(_col(t, "status"), "new")
    return [
        (_mask(pc.and_(decided, pc.is_null(_col(t, "status_by")))), "status_by",
         "a confirmed or dismissed alert needs who decided (status_by), for the audit"),
        (_mask(pc.and_(decided, pc.is_null(_col(t, "status_ts")))), "status_ts",
         "a confirmed or dismissed alert needs when it was decided (status_ts)"),
        (_mask(pc.less(_col(t, "status_ts"), _col(t, "ts"))), "status_ts", "decided before the alert was raised"),
    ]


def _trip_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    out = [(_mask(pc.less(_col(t, "end_ts"), _col(t, "start_ts"))), "end_ts", "trip ends before it starts")]
    n_lon = pc.list_value_length(_col(t, "path_lon"))
    for other in ("path_lat", "path_ts"):
        n = pc.list_value_length(_col(t, other))
        out.append((_mask(pc.and_(pc.is_valid(n), pc.not_equal(n, n_lon))), other,
                    f"{other} has a different length from path_lon"))
    out.append((_mask(pc.greater(_col(t, "checkpoints_scanned"), _col(t, "checkpoints_planned"))),
                "checkpoints_scanned", "more checkpoints scanned than planned"))
    return out


def _survey_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    return [(_mask(pc.not_equal(pc.day(_col(t, "month")), 1)), "month", "month must be the first day of the month")]


def _sos_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    return [(_mask(pc.and_(pc.equal(_col(t, "source"), "sos_pole"), pc.is_null(_col(t, "pole_id")))), "pole_id",
             "an SOS pole press needs the pole_id")]


def _detection_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    return [
        (_mask(pc.less_equal(_col(t, "bbox_x2"), _col(t, "bbox_x1"))), "bbox_x2", "bbox_x2 must exceed bbox_x1"),
        (_mask(pc.less_equal(_col(t, "bbox_y2"), _col(t, "bbox_y1"))), "bbox_y2", "bbox_y2 must exceed bbox_y1"),
    ]


def _edge_rules(t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    if "edge_u" not in t.column_names:
        return []
    valid = [pc.is_valid(_col(t, c)) for c in ("edge_u", "edge_v", "edge_key")]
    some = pc.or_(pc.or_(valid[0], valid[1]), valid[2])
    every = pc.and_(pc.and_(valid[0], valid[1]), valid[2])
    return [(_mask(pc.and_(some, pc.invert(every))), "edge_u",
             "edge_u, edge_v and edge_key go together: give all three or none")]


RULES: dict[str, list[Check]] = {
    "risk_points": [_risk_rules], "alerts": [_alert_rules], "patrol_trips": [_trip_rules],
    "survey_results": [_survey_rules], "sos_reports": [_sos_rules], "detections": [_detection_rules],
}


def _column_checks(layer: str, t: pa.Table) -> list[tuple[np.ndarray, str, str]]:
    out: list[tuple[np.ndarray, str, str]] = []
    for f in schema(layer):
        col = t.column(f.name)
        if not f.nullable and col.null_count:
            out.append((_mask(pc.is_null(col)), f.name, "required field is missing"))
        allowed = enum_values(f)
        if allowed is not None:
            out.append((_mask(pc.and_(pc.is_valid(col), pc.invert(pc.is_in(col, pa.array(allowed))))), f.name,
                        f"not one of {', '.join(allowed)}"))
        elif pa.types.is_string(f.type) and not f.nullable:
            out.append((_mask(pc.equal(pc.utf8_length(col), 0)), f.name, "required text is empty"))
        if pa.types.is_floating(f.type):
            out.append((_mask(pc.is_nan(col)), f.name, "not a finite number"))
        lo, hi = bounds(f)
        if lo is not None:
            out.append((_mask(pc.less(col, lo)), f.name, f"below the minimum {lo:g}"))
        if hi is not None:
            out.append((_mask(pc.greater(col, hi)), f.name, f"above the maximum {hi:g}"))
    out += _edge_rules(t)
    for rule in RULES.get(layer, []):
        out += rule(t)
    return out


def _apply_checks(layer: str, t: pa.Table, rows: np.ndarray, city: str | None, pre_bad: np.ndarray | None = None,
                  skip: set[tuple[int, str]] | None = None) -> AppendResult:
    """Run the column checks on ``t`` (rows[i] is its i-th row's input index) and drop failing rows.

    ``pre_bad`` marks rows already known bad; ``skip`` lists (row, field) faults already reported.
    """
    checks = _column_checks(layer, t)
    if city is not None and "city" in t.column_names:
        checks.append((_mask(pc.not_equal(t.column("city"), city)), "city",
                       f"row is not for this twin's city {city!r}"))
    bad = np.zeros(t.num_rows, dtype=bool) if pre_bad is None else pre_bad.copy()
    rejected: list[Rejection] = []
    for m, fname, reason in checks:
        if not m.any():
            continue
        bad |= m
        idx = np.flatnonzero(m)
        vals = t.column(fname).take(pa.array(idx)).to_pylist()
        rejected += [Rejection(layer, int(rows[i]), fname, reason, v) for i, v in zip(idx, vals, strict=True)
                     if not skip or (int(rows[i]), fname) not in skip]
    good = t.filter(pa.array(~bad)) if bad.any() else t
    rejected.sort(key=lambda r: (r.row, r.field))
    return AppendResult(layer, good, rejected)


def validate_rows(layer: str, rows: Iterable[Mapping[str, Any]], city: str | None = None) -> AppendResult:
    """Validate row dicts for a layer.

    Missing nullable fields are null; ``city`` (when given) fills a missing city and rejects rows of others.

    Parameters
    ----------
    layer
        A layer name (:data:`twin.schemas.LAYERS`).
    rows
        The rows as dicts.
    city
        The city the rows must belong to.

    Returns
    -------
    AppendResult
        The accepted rows as an Arrow table of the layer's schema, and a rejection (row, field, reason) per
        refused row.

    Raises
    ------
    KeyError
        For an unknown layer.
    """
    sch = schema(layer)
    names = set(sch.names)
    cols: dict[str, list[Any]] = {n: [] for n in sch.names}
    kept: list[int] = []
    rejected: list[Rejection] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            rejected.append(Rejection(layer, i, "*", "row is not a mapping of field -> value", type(row).__name__))
            continue
        errs = [Rejection(layer, i, k, f"unknown field (the {layer} fields are: {', '.join(sch.names)})", row[k])
                for k in row if k not in names]
        vals: dict[str, Any] = {}
        for f in sch:
            v = row.get(f.name)
            if f.name == "city" and _is_missing(v) and city is not None:
                v = city
            if _is_missing(v):
                vals[f.name] = None
                continue
            try:
                vals[f.name] = _convert(f.type, v)
            except _Bad as e:
                errs.append(Rejection(layer, i, f.name, str(e), v))
        rejected += errs
        kept.append(i)
        for n in sch.names:
            cols[n].append(vals.get(n))
    # Rows with conversion errors still take the column checks (so one answer lists every fault of a row),
    # then are dropped; a field that failed conversion is not reported a second time as missing.
    t = pa.Table.from_pydict(cols, schema=_relaxed(sch))
    pre_bad = np.zeros(len(kept), dtype=bool)
    pre_bad[np.searchsorted(kept, sorted({r.row for r in rejected}))] = True
    res = _apply_checks(layer, t, np.asarray(kept, dtype=np.int64), city, pre_bad,
                        {(r.row, r.field) for r in rejected})
    res.rejected = sorted(rejected + res.rejected, key=lambda r: (r.row, r.field))
    res.table = res.table.cast(sch)
    return res


def _relaxed(sch: pa.Schema) -> pa.Schema:
    """The schema with every field nullable, so missing required values become rejections, not errors."""
    return pa.schema([f.with_nullable(True) for f in sch], metadata=sch.metadata)


def validate_table(layer: str, table: pa.Table, city: str | None = None) -> AppendResult:
    """Validate a whole Arrow table (bulk input) with column-at-a-time checks.

    Columns are matched by name and cast to the layer's types; absent nullable columns become null.

    Parameters
    ----------
    layer
        A layer name.
    table
        The input table (n rows).
    city
        The city the rows must belong to.

    Returns
    -------
    AppendResult
        The accepted rows and the rejections (row, field, reason).

    Raises
    ------
    LayerError
        For a column that cannot be cast at all, an unknown column or an absent required column: no row
        could be kept.
    """
    sch = schema(layer)
    problems: list[Rejection] = []
    unknown = [c for c in table.column_names if c not in sch.names]
    if unknown:
        problems.append(Rejection(layer, -1, unknown[0], f"unknown column(s) {unknown}: the {layer} fields are "
                                  f"{', '.join(sch.names)}"))
    arrays = []
    for f in sch:
        if f.name not in table.column_names:
            if f.name == "city" and city is not None:
                arrays.append(pa.chunked_array([pa.array([city] * table.num_rows, pa.string())]))
                continue
            if not f.nullable:
                problems.append(Rejection(layer, -1, f.name, "required column is absent"))
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, f.type)]))
            continue
        col = table.column(f.name)
        try:
            if pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type) and col.type.tz is None:
                raise pa.ArrowInvalid("timezone-naive timestamps: give UTC times")
            arrays.append(col.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            problems.append(Rejection(layer, -1, f.name, f"column of type {col.type} cannot become {f.type}: {e}"))
    if problems:
        raise LayerError(layer, problems)
    t = pa.Table.from_arrays(arrays, schema=_relaxed(sch))
    res = _apply_checks(layer, t, np.arange(t.num_rows), city)
    res.table = res.table.cast(sch)
    return res


class LayerAppender:
    """Accumulates validated rows of one layer; ``table`` is everything accepted so far."""

    def __init__(self, layer: str, city: str | None = None, table: pa.Table | None = None):
        self.layer = layer
        self.city = city
        self.schema = schema(layer)
        self._chunks: list[pa.Table] = [table.cast(self.schema)] if table is not None else []

    def _add(self, res: AppendResult, strict: bool) -> AppendResult:
        if strict and res.rejected:
            raise LayerError(self.layer, res.rejected)
        if res.accepted:
            self._chunks.append(res.table)
        return res

    def append(self, rows: Iterable[Mapping[str, Any]], strict: bool = False) -> AppendResult:
        """Validate and append row dicts; bad rows are skipped (or, with ``strict``, nothing is appended)."""
        return self._add(validate_rows(self.layer, rows, self.city), strict)

    def append_table(self, table: pa.Table, strict: bool = False) -> AppendResult:
        """Validate and append an Arrow table (bulk path)."""
        return self._add(validate_table(self.layer, table, self.city), strict)

    @property
    def table(self) -> pa.Table:
        """All accepted rows as one table of the layer's schema."""
        if not self._chunks:
            return self.schema.empty_table()
        if len(self._chunks) > 1:
            self._chunks = [pa.concat_tables(self._chunks).combine_chunks()]
        return self._chunks[0]

    def replace(self, table: pa.Table) -> AppendResult:
        """Replace the layer's content with a validated table (e.g. after alert status changes); strict."""
        res = validate_table(self.layer, table, self.city)
        if res.rejected:
            raise LayerError(self.layer, res.rejected)
        self._chunks = [res.table]
        return res

    def __len__(self) -> int:
        return sum(c.num_rows for c in self._chunks)


class TwinState:
    """The layers of one city's twin in memory: one :class:`LayerAppender` per layer of :data:`LAYERS`."""

    def __init__(self, city: str, tables: Mapping[str, pa.Table] | None = None):
        self.city = city
        self.layers: dict[str, LayerAppender] = {}
        for name in LAYERS:
            t = (tables or {}).get(name)
            self.layers[name] = LayerAppender(name, city, t)

    def _get(self, layer: str) -> LayerAppender:
        schema(layer)  # a clear KeyError for unknown names
        return self.layers[layer]

    def append(self, layer: str, rows: Iterable[Mapping[str, Any]], strict: bool = False) -> AppendResult:
        """Validate and append rows to a layer (see :meth:`LayerAppender.append`)."""
        return self._get(layer).append(rows, strict)

    def append_table(self, layer: str, table: pa.Table, strict: bool = False) -> AppendResult:
        """Validate and append an Arrow table to a layer."""
        return self._get(layer).append_table(table, strict)

    def replace(self, layer: str, table: pa.Table) -> AppendResult:
        """Replace a layer's content with a validated table."""
        return self._get(layer).replace(table)

    def table(self, layer: str) -> pa.Table:
        """One layer's table."""
        return self._get(layer).table

    def tables(self) -> dict[str, pa.Table]:
        """Every layer's table (empty layers included), by name."""
        return {name: a.table for name, a in self.layers.items()}

    def counts(self) -> dict[str, int]:
        """Rows per layer."""
        return {name: len(a) for name, a in self.layers.items()}

    def duplicates(self, layer: str) -> int:
        """How many rows of a layer repeat an earlier row's primary key (see :data:`twin.schemas.KEYS`)."""
        t = self.table(layer)
        if t.num_rows == 0:
            return 0
        keys = list(KEYS[layer])
        return t.num_rows - t.group_by(keys).aggregate([]).num_rows
