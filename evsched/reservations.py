"""EV reservation requests: the CSV schema, loading and row-by-row validation.

One row per reservation (one EV, one stay at one charging station). Units are in the column
names; buses are Baran & Wu ids (1 = substation); hours are clock hours of the study day.

Schema (see also ``data/reservations/README.md``; :data:`SCHEMA` is the single source):

=====================  ======  ===========================================================
column                 unit    allowed values
=====================  ======  ===========================================================
ev_id                  --      non-empty printable text, unique in the file, at most 64
                               characters, not starting with = + - @ (CSV injection)
bus                    --      bus id of the network (where the owner lives / works)
station                --      bus id of one of the charging stations of the case
arrival_hour           h       0 <= arrival_hour < 24 (fractions allowed: 18.25 = 18:15)
departure_hour         h       0 <= departure_hour < 24
departure_day          --      0 = leaves the same day, 1 = leaves the next day (overnight)
mode                   --      'charge' (charge only), 'discharge' (discharge only, V2G
                               seller), 'both' (charge and discharge, V2G)
battery_kwh            kWh     0 < battery_kwh <= 250 (plausibility bound)
soc_arrival            --      0..1, state of charge on arrival
soc_departure_min      --      0..1, SOC the owner needs when leaving
soc_min                --      0..1, floor the station may discharge to; <= soc_departure_min
soc_max                --      0..1, ceiling the station may charge to; >= soc_departure_min
charger_kw             kW      0 < charger_kw <= 350, active-power rating (both directions)
charger_kva            kVA     charger_kw <= charger_kva <= 2·charger_kw, apparent-power rating
efficiency             --      0 < efficiency <= 1, one-way charge = discharge efficiency
=====================  ======  ===========================================================

Cross-field rules:

* the stay ``departure_hour + 24·departure_day − arrival_hour`` lies in (0, 24) h;
* the energy need ``(soc_departure_min − soc_arrival)·battery_kwh`` does not exceed what the
  charger can deliver to the battery in the stay, ``efficiency·charger_kw·stay`` [kWh];
* a 'discharge' (discharge-only) reservation cannot raise the SOC: ``soc_departure_min ≤
  soc_arrival``.

The upper bounds :data:`MAX_BATTERY_KWH`, :data:`MAX_CHARGER_KW` and :data:`MAX_KVA_RATIO` are
plausibility bounds for light-duty EVs, justified in ``data/reservations/README.md``.

The file (:func:`read_reservations`) is UTF-8 CSV text (a UTF-8 byte-order mark is allowed);
an empty file, a header without rows, binary content (gzip, ZIP/xlsx, UTF-16, NUL bytes),
text that is not UTF-8, a directory, a quoted value running over a line break (a stray
quote) and duplicate column names are refused; a row with more or fewer fields than the
header is rejected like a broken rule. One exception, common in spreadsheet exports: a trailing
comma on every line (or on every data row) makes an *unnamed, entirely empty* last column,
which is ignored; if any row has a value there the file is refused. Blank lines are skipped.
The station buses must be bus ids of the network other than the substation
(:func:`check_station_buses`).

Nothing is clipped or silently dropped: :func:`validate_reservations` either raises on the
first broken rule (``on_error="raise"``, file order, then rule order) or rejects every bad
row and lists each broken rule (``on_error="skip"``) with ``row`` (1-based data row, the
header is not counted), ``ev_id``, ``field``, ``value`` (as written) and ``reason``.
"""
from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import InputError, input_error

MODES = ("charge", "discharge", "both")
"""Allowed ``mode`` values: charge only, discharge only, bidirectional."""

MAX_ID_LENGTH = 64
"""Longest allowed ``ev_id`` [characters]."""
FORMULA_PREFIXES = ("=", "+", "-", "@")
"""An ``ev_id`` may not start with these: a spreadsheet would evaluate it (CSV injection)."""
MAX_BATTERY_KWH = 250.0
"""Plausibility bound on ``battery_kwh`` [kWh]: the largest light-duty EV pack is ≈ 247 kWh
gross / 213 kWh usable (GMC Hummer EV); see ``data/reservations/README.md``."""
MAX_CHARGER_KW = 350.0
"""Plausibility bound on ``charger_kw`` [kW]: the highest CCS high-power charging class."""
MAX_KVA_RATIO = 2.0
"""Plausibility bound on ``charger_kva / charger_kw`` (the inverter oversizing range 1.0..2.0
of the case's PV/WT inverters)."""


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    kind: str  # 'text', 'int', 'float', 'mode'
    allowed: str


SCHEMA: tuple[Column, ...] = (
    Column("ev_id", "-", "text", "non-empty printable text, unique in the file, "
                                f"<= {MAX_ID_LENGTH} characters, not starting with = + - @"),
    Column("bus", "-", "int", "bus id of the network"),
    Column("station", "-", "int", "bus id of a charging station of the case"),
    Column("arrival_hour", "h", "float", "0 <= value < 24"),
    Column("departure_hour", "h", "float", "0 <= value < 24"),
    Column("departure_day", "-", "int", "0 (same day) or 1 (next day)"),
    Column("mode", "-", "mode", "'charge', 'discharge' or 'both'"),
    Column("battery_kwh", "kWh", "float", f"0 < value <= {MAX_BATTERY_KWH:g}"),
    Column("soc_arrival", "-", "float", "0..1"),
    Column("soc_departure_min", "-", "float", "0..1, soc_min <= value <= soc_max"),
    Column("soc_min", "-", "float", "0..1"),
    Column("soc_max", "-", "float", "0..1"),
    Column("charger_kw", "kW", "float", f"0 < value <= {MAX_CHARGER_KW:g}"),
    Column("charger_kva", "kVA", "float", f"charger_kw <= value <= {MAX_KVA_RATIO:g} x charger_kw"),
    Column("efficiency", "-", "float", "0 < value <= 1"),
)
COLUMNS = [c.name for c in SCHEMA]
_NUMERIC = [c.name for c in SCHEMA if c.kind in ("int", "float")]
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none"}
TOL = 1e-9

# --- the rules' texts (the tests check them verbatim) ---------------------------------
MSG_MISSING = "missing value"
MSG_NOT_NUMBER = "not a number"
MSG_NOT_FINITE = "must be a finite number"
MSG_NOT_INTEGER = "must be a whole number"
MSG_EMPTY_ID = "must be non-empty text"
MSG_HOUR = "must be a clock hour in [0, 24)"
MSG_DAY = "must be 0 (same day) or 1 (next day, overnight stay)"
MSG_MODE = "must be one of 'charge', 'discharge', 'both'"
MSG_POSITIVE = "must be > 0"
MSG_SOC = "must be a state of charge in [0, 1]"
MSG_EFFICIENCY = "must be in (0, 1]"
MSG_ID_PRINTABLE = ("must be printable text: no control characters (tab, newline, escape, ...) "
                    "and no invisible format characters")
MSG_ID_FORMULA = ("must not start with '=', '+', '-' or '@': a spreadsheet would run it as a "
                  "formula (CSV injection)")
MSG_BATTERY_MAX = (f"must be <= {MAX_BATTERY_KWH:g} kWh (plausibility bound for a light-duty EV "
                   "battery, see data/reservations/README.md)")
MSG_CHARGER_MAX = (f"must be <= {MAX_CHARGER_KW:g} kW (plausibility bound: the highest "
                   "high-power charging class, see data/reservations/README.md)")


def _msg_duplicate(first_row: int) -> str:
    return f"duplicate ev_id (first used in row {first_row})"


def _msg_bus(bus_ids) -> str:
    return f"must be a bus id of the network ({_id_range(bus_ids)})"


def _msg_station(stations) -> str:
    return f"must be one of the station buses {sorted(int(s) for s in stations)}"


def _id_range(ids) -> str:
    ids = sorted(int(b) for b in ids)
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}..{ids[-1]}"
    return str(ids)


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_reservations`.

    Attributes
    ----------
    accepted : DataFrame, the valid rows with typed columns in :data:`COLUMNS` order
        (original order, index reset)
    rejected : DataFrame ``row, ev_id, field, value, reason`` — one line per broken rule
        (a row breaking two rules appears twice)
    n_rows : number of data rows read
    source : the file name (or label) used in messages
    notes : what reading tolerated without changing any value (an empty trailing column)
    """

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    n_rows: int
    source: str
    notes: list = field(default_factory=list)

    @property
    def n_accepted(self) -> int:
        return len(self.accepted)

    @property
    def n_rejected(self) -> int:
        """Number of rejected rows (not of broken rules)."""
        return int(self.rejected["row"].nunique()) if len(self.rejected) else 0

    @property
    def ok(self) -> bool:
        return self.n_rejected == 0

    def messages(self) -> list[str]:
        """One actionable message per broken rule (same text as the fail-first error)."""
        return [str(_error(self.source, r.row, r.ev_id, r.field, r.value, r.reason))
                for r in self.rejected.itertuples()]

    def summary(self) -> str:
        return (f"{self.source}: {self.n_accepted} accepted, {self.n_rejected} rejected "
                f"(of {self.n_rows} rows)")

    def rejected_for_csv(self) -> pd.DataFrame:
        """:attr:`rejected` made safe to open in a spreadsheet: a text cell of ``ev_id`` or
        ``value`` that starts with ``= + - @`` (tab, CR) and is not a plain number gets a
        leading apostrophe, so it is shown as text instead of being run as a formula."""
        out = self.rejected.copy()
        for c in ("ev_id", "value"):
            out[c] = [spreadsheet_safe(v) for v in out[c]]
        return out


_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MESSAGE_TEXT_MAX = 100  # longer ids / values are shortened in messages


def spreadsheet_safe(value):
    """``value`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") \
            and not _NUMBER_RE.fullmatch(value):
        return "'" + value
    return value


def _plain(value):
    """Python scalar for messages: ``0.0``, never ``np.float64(0.0)``; long text shortened."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and len(value) > _MESSAGE_TEXT_MAX:
        value = f"{value[:_MESSAGE_TEXT_MAX]}... ({len(value)} characters)"
    return value


def _error(source, row, ev_id, field, value, reason) -> InputError:
    return input_error(source, f"row {row} (ev_id {_plain(ev_id)!r})", field, _plain(value), reason)


def check_station_buses(network, station_buses, source: str = "station_buses") -> tuple:
    """The station bus ids as a tuple of int, or :class:`InputError`.

    Rules: at least one; whole numbers; bus ids of ``network``; not the substation (slack)
    bus, whose voltage is fixed and which has no load; no repeats.
    """
    vals = [] if station_buses is None else list(np.atleast_1d(np.asarray(station_buses, dtype=object)))
    shown = [_plain(v) for v in vals]
    slack = int(network.slack_bus)
    ids = [int(b) for b in network.bus_ids]
    allowed = [b for b in ids if b != slack]
    rule = (f"station buses must be distinct bus ids of the network other than the substation "
            f"(bus {slack}), i.e. {_id_range(allowed)}")

    def fail(problem):
        raise InputError(f"{source}, field 'station_buses' = {shown!r}: {problem}; {rule}")

    if not vals:
        fail("no station bus given")
    whole = [v for v in shown if isinstance(v, (int, float)) and not isinstance(v, bool)
             and np.isfinite(v) and float(v).is_integer()]
    if len(whole) != len(shown):
        fail(f"not bus ids: {[v for v in shown if v not in whole]}")
    buses = [int(v) for v in whole]
    unknown = [b for b in buses if b not in set(ids)]
    if unknown:
        fail(f"unknown bus id(s) {unknown}")
    if slack in buses:
        fail(f"the substation (bus {slack}) cannot host a station")
    repeated = sorted({b for b in buses if buses.count(b) > 1})
    if repeated:
        fail(f"repeated bus id(s) {repeated}")
    return tuple(buses)


def read_reservations(path) -> pd.DataFrame:
    """Read a reservation CSV as text (no type conversion: validation reports what is written).

    Raises :class:`InputError` for a file that is not a readable reservation table (see the
    module docstring: empty, binary, not UTF-8, a directory, duplicate columns, a row with
    more or fewer fields than the header). A header without rows gives an empty frame;
    :func:`validate_reservations` refuses it.
    """
    source = str(path)
    raw, ragged, _ = _read_table(path, source)
    if ragged:
        i, (n_fields, line_no) = next(iter(ragged.items()))
        raise _error(source, i + 1, _id_text(raw, i), "number of fields", n_fields,
                     _msg_ragged(n_fields, raw.shape[1], line_no))
    return raw


def validate_reservations(data, network, station_buses, on_error: str = "raise",
                          source: str | None = None, verbose: bool = False) -> ValidationReport:
    """Check every reservation row against :data:`SCHEMA` and the cross-field rules.

    Parameters
    ----------
    data : path of a CSV file, or a DataFrame with the :data:`COLUMNS`
    network : :class:`evsched.network.Network` (bus ids for ``bus`` and ``station``)
    station_buses : bus ids of the case's charging stations (:func:`check_station_buses`)
    on_error : ``"raise"`` — raise :class:`InputError` at the first broken rule (file order);
        ``"skip"`` — reject every bad row and report each broken rule
    source : name used in messages (default: the file path, or ``"reservations"``)
    verbose : print the accepted/rejected counts (and, when skipping, every rejection)

    Returns
    -------
    ValidationReport

    Raises
    ------
    InputError
        in both modes for what no row can fix: bad ``station_buses``, an unreadable file,
        a bad header, no data rows.
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stations = check_station_buses(network, station_buses, "station_buses parameter")
    ragged: dict = {}
    notes: list = []
    if isinstance(data, (str, Path)):
        source = source or str(data)
        raw, ragged, notes = _read_table(data, source)
    else:
        source = source or "reservations"
        raw = pd.DataFrame(data).reset_index(drop=True)
        _check_unique_columns(list(raw.columns), source)
    _check_header(raw, source)
    if len(raw) == 0:
        raise InputError(f"{source}: no reservations: the header is there but no data row; "
                         "a reservation file needs at least one row")
    raw = raw[COLUMNS]
    rejected, typed = _find_problems(raw, network, stations, ragged)
    if len(rejected) and on_error == "raise":
        first = rejected.iloc[0]
        err = _error(source, first["row"], first["ev_id"], first["field"], first["value"],
                     first["reason"])
        err.row, err.n_rows = int(first["row"]), len(raw)  # for callers that report progress
        raise err
    bad_rows = np.unique(rejected["row"].to_numpy(int) - 1)
    accepted = typed.drop(index=bad_rows).reset_index(drop=True)
    report = ValidationReport(accepted, rejected, len(raw), source, notes)
    if verbose:
        for note in notes:
            print(note)
        for m in report.messages():
            print(m)
        print(report.summary())
    return report


# --- reading ---------------------------------------------------------------------------
_MAGIC = (  # (leading bytes, what it is, what to do)
    (b"\x1f\x8b", "gzip-compressed data", "decompress it (gunzip) to a UTF-8 CSV file"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?)", "export the sheet as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "an OLE2 file (an .xls workbook?)", "export the sheet as 'CSV UTF-8'"),
    (b"\xff\xfe", "UTF-16 text (byte-order mark ff fe)", "save it as UTF-8 CSV"),
    (b"\xfe\xff", "UTF-16 text (byte-order mark fe ff)", "save it as UTF-8 CSV"),
)


def _msg_ragged(n_fields: int, n_header: int, line_no: int) -> str:
    kind = ("too many fields (a stray comma, or an unquoted comma inside a value?)"
            if n_fields > n_header else
            "too few fields (an empty value still needs its comma)")
    return f"must be {n_header}, the number of header columns; line {line_no} has {kind}"


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def _read_text(path, source: str) -> str:
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{source}: is a directory, not a reservation CSV file")
    if not p.exists():
        raise InputError(f"{source}: file not found")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise InputError(f"{source}: empty file ({len(data)} bytes): a reservation file needs a "
                         f"header line ({','.join(COLUMNS)}) and at least one reservation row")
    for magic, what, todo in _MAGIC:
        if data.startswith(magic):
            raise InputError(f"{source}: {what}, not a CSV text file: {todo}; a reservation "
                             "file is UTF-8 CSV text")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{source}, line {_line_of(data, nul)}: binary content "
                         f"(NUL byte at byte offset {nul}); a reservation file is UTF-8 CSV text "
                         "(UTF-16 without byte-order mark? save it as UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}, line {_line_of(data, exc.start)}: not UTF-8 text "
                         f"(byte 0x{data[exc.start]:02x} at byte offset {exc.start}): save the "
                         "file as UTF-8 CSV (or binary content?)") from None


def _read_table(path, source: str):
    """The reservation table as text, the ragged rows ``{row_index: (n_fields, line)}`` (their
    cells are blank but for the ``ev_id``, kept for messages) and notes on what was tolerated."""
    text = _read_text(path, source)
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    rows, lines = [], []
    last = 0
    try:
        for rec in reader:
            if reader.line_num > last + 1:  # no value may hold a line break: a stray quote
                raise InputError(f"{source}, line {last + 1}: a quoted value runs over lines "
                                 f"{last + 1}-{reader.line_num} (an unmatched '\"'?); no "
                                 "reservation field may contain a line break")
            last = reader.line_num
            if len(rec) > 1 or (rec and rec[0].strip()):  # blank lines carry no data
                rows.append(rec)
                lines.append(reader.line_num)
    except csv.Error as exc:
        span = (f"line {last + 1}" if reader.line_num <= last + 1
                else f"line {last + 1} (read up to line {reader.line_num})")
        raise InputError(f"{source}, {span}: cannot be parsed as CSV ({exc}; an unmatched "
                         "'\"'?)") from None
    if not rows:
        raise InputError(f"{source}: empty file (only blank lines): a reservation file needs a "
                         f"header line ({','.join(COLUMNS)}) and at least one reservation row")
    header, data, lines = rows[0], rows[1:], lines[1:]
    h = len(header)
    notes = []
    trailing = (f"{source}: note: the unnamed, empty last column (a trailing comma on every "
                "line) was ignored")
    lengths = np.fromiter(map(len, data), dtype=int, count=len(data))
    if h > 1 and not header[-1].strip():
        # unnamed last column (trailing comma on the header): accepted only if empty everywhere
        for i in np.flatnonzero(lengths == h):
            if data[i][-1].strip():
                raise _error(source, i + 1, data[i][0], f"(unnamed column {h})", data[i][-1],
                             "must be empty: an unnamed last column (a trailing comma on every "
                             "line) is ignored only if it is empty in every row; name it in the "
                             "header (it is then an unknown column) or delete it")
        header = header[:-1]
        data = [r[:-1] if len(r) == h else r for r in data]
        h -= 1
        notes.append(trailing)
        lengths = np.fromiter(map(len, data), dtype=int, count=len(data))
    elif data and (lengths == h + 1).all() and not any(r[-1].strip() for r in data):
        # every data row ends with a comma (the header does not): drop that empty field
        data = [r[:-1] for r in data]
        lengths -= 1
        notes.append(trailing.replace("every line", "every data row"))
    _check_unique_columns(header, source)
    ragged = {int(i): (int(lengths[i]), lines[i]) for i in np.flatnonzero(lengths != h)}
    if ragged:  # keep only the row's ev_id (for messages); the rest is blank
        j = header.index("ev_id") if "ev_id" in header else 0
        data = list(data)
        for i in ragged:
            data[i] = [data[i][j] if k == j and j < len(data[i]) else "" for k in range(h)]
    raw = pd.DataFrame(data, columns=header, dtype=str) if data else pd.DataFrame(columns=header, dtype=str)
    return raw, ragged, notes


def _check_unique_columns(cols: list, source: str) -> None:
    seen: dict = {}
    for j, name in enumerate(cols):
        if name in seen:
            raise input_error(source, "header", name, name,
                              f"duplicate column (columns {seen[name] + 1} and {j + 1}); "
                              f"the schema is {COLUMNS}")
        seen[name] = j


# --- internals -------------------------------------------------------------------------
def _id_text(raw: pd.DataFrame, i: int) -> str:
    v = raw.at[i, "ev_id"] if "ev_id" in raw.columns else raw.iat[i, 0]
    return "" if _is_missing(v) else str(v)


def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in _MISSING_TEXT


def _per_unique(col: pd.Series, fn) -> np.ndarray:
    """``fn`` (Series → array-like) applied to the distinct values of ``col`` only, spread back to
    every row: a column of 100,000 rows holds a few hundred distinct numbers or one mode."""
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    return np.asarray(fn(pd.Series(uniques, dtype=object)))[codes]


def _missing_mask(col: pd.Series) -> np.ndarray:
    """Vectorised :func:`_is_missing` of a column."""
    return _per_unique(col, lambda u: u.isna().to_numpy()
                       | u.astype(str).str.strip().str.lower().isin(_MISSING_TEXT).to_numpy())


def _check_header(raw: pd.DataFrame, source: str) -> None:
    cols = list(raw.columns)
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise input_error(source, "header", missing[0], None,
                          f"required column missing (missing: {missing}); "
                          f"the schema is {COLUMNS}")
    extra = [c for c in cols if c not in COLUMNS]
    if extra:
        raise input_error(source, "header", extra[0], extra[0],
                          f"unknown column (unknown: {extra}); the schema is {COLUMNS}")


def _numbers(col: pd.Series) -> np.ndarray:
    """A column as floats (NaN where it is not a number); text is stripped first."""
    if col.dtype.kind in "iuf":
        return col.to_numpy(dtype=float)
    return _per_unique(col, lambda u: pd.to_numeric(u.astype(str).str.strip(), errors="coerce")
                       .to_numpy(dtype=float)).astype(float)


def _find_problems(raw: pd.DataFrame, network, station_buses, ragged=None):
    """Vectorised checks (no loop over rows). Returns the ``rejected`` frame (``row, ev_id,
    field, value, reason``, sorted by row, then rule order) and the typed frame."""
    n = len(raw)
    parts = []  # (rows, rule number, field, reason(s), values or None)
    rule_no = itertools.count()
    skip = np.zeros(n, dtype=bool)
    if ragged:
        rows = np.array(sorted(ragged), dtype=int)
        skip[rows] = True
        parts.append((rows, next(rule_no), "number of fields",
                      [_msg_ragged(ragged[i][0], len(COLUMNS), ragged[i][1]) for i in rows],
                      [ragged[i][0] for i in rows]))

    def flag(mask, field, reason):
        k = next(rule_no)
        rows = np.flatnonzero(np.asarray(mask, dtype=bool) & ~skip)
        if rows.size:
            parts.append((rows, k, field,
                          reason if isinstance(reason, str) else [reason(i) for i in rows], None))

    missing = np.column_stack([_missing_mask(raw[c]) for c in COLUMNS])
    for j, c in enumerate(COLUMNS):
        flag(missing[:, j], c, MSG_MISSING)
    ok = ~missing & ~skip[:, None]  # cell usable so far
    col = {c: j for j, c in enumerate(COLUMNS)}

    def rule(c, bad_mask, reason):
        bad = ok[:, col[c]] & np.asarray(bad_mask, dtype=bool)
        flag(bad, c, reason)
        ok[:, col[c]] &= ~bad

    # ev_id: printable, no formula prefix, bounded length, unique
    id_text = raw["ev_id"].astype(str)
    ids = pd.Series(np.where(missing[:, 0], "", id_text.str.strip()), dtype=object)
    all_printable = "".join(id_text.to_numpy()).isprintable()  # fast path: one C call
    rule("ev_id", np.zeros(n, dtype=bool) if all_printable else
         ~id_text.map(str.isprintable).to_numpy(dtype=bool), MSG_ID_PRINTABLE)
    rule("ev_id", ids.str[:1].isin(FORMULA_PREFIXES).to_numpy(), MSG_ID_FORMULA)
    id_len = ids.str.len().to_numpy()
    rule("ev_id", id_len > MAX_ID_LENGTH,
         lambda i: f"must be at most {MAX_ID_LENGTH} characters (this one has {id_len[i]})")
    nonempty = (ids != "").to_numpy()
    dup = ids.duplicated(keep="first").to_numpy() & nonempty
    first = pd.Series(np.arange(n)).groupby(ids.to_numpy()).transform("min").to_numpy() + 1
    flag(dup, "ev_id", lambda i: _msg_duplicate(first[i]))

    # numbers
    num = {}
    for c in _NUMERIC:
        v = _numbers(raw[c])
        rule(c, np.isnan(v), MSG_NOT_NUMBER)
        rule(c, np.isinf(v), MSG_NOT_FINITE)
        num[c] = v
    for c in ("bus", "station", "departure_day"):
        rule(c, num[c] != np.round(num[c]), MSG_NOT_INTEGER)

    bus_ids = np.asarray(network.bus_ids)
    stations = np.asarray(list(station_buses))
    with np.errstate(invalid="ignore"):
        rule("bus", ~np.isin(num["bus"], bus_ids), _msg_bus(bus_ids))
        rule("station", ~np.isin(num["station"], stations), _msg_station(stations))
        for c in ("arrival_hour", "departure_hour"):
            rule(c, ~((num[c] >= 0) & (num[c] < 24)), MSG_HOUR)
        rule("departure_day", ~np.isin(num["departure_day"], [0, 1]), MSG_DAY)
        mode = pd.Series(_per_unique(raw["mode"], lambda u: u.astype(str).str.strip().str.lower()),
                         dtype=object).where(~missing[:, col["mode"]])
        rule("mode", ~mode.isin(MODES).to_numpy(), MSG_MODE)
        rule("battery_kwh", ~(num["battery_kwh"] > 0), MSG_POSITIVE)
        rule("battery_kwh", num["battery_kwh"] > MAX_BATTERY_KWH, MSG_BATTERY_MAX)
        for c in ("soc_arrival", "soc_departure_min", "soc_min", "soc_max"):
            rule(c, ~((num[c] >= 0) & (num[c] <= 1)), MSG_SOC)
        rule("charger_kw", ~(num["charger_kw"] > 0), MSG_POSITIVE)
        rule("charger_kw", num["charger_kw"] > MAX_CHARGER_KW, MSG_CHARGER_MAX)
        rule("efficiency", ~((num["efficiency"] > 0) & (num["efficiency"] <= 1)), MSG_EFFICIENCY)

    def all_ok(*cs):
        return np.logical_and.reduce([ok[:, col[c]] for c in cs])

    with np.errstate(invalid="ignore"):
        # apparent-power rating at least the active rating, at most MAX_KVA_RATIO times it
        both = all_ok("charger_kw")
        rule("charger_kva", both & ~(num["charger_kva"] >= num["charger_kw"] - TOL),
             lambda i: f"must be >= charger_kw (= {_fmt(num['charger_kw'][i])} kW)")
        both = all_ok("charger_kw")
        rule("charger_kva", both & (num["charger_kva"] > MAX_KVA_RATIO * num["charger_kw"] + TOL),
             lambda i: (f"must be <= {MAX_KVA_RATIO:g} x charger_kw = "
                        f"{_fmt(MAX_KVA_RATIO * num['charger_kw'][i])} kVA (plausibility bound, "
                        "see data/reservations/README.md)"))
        # SOC ordering: soc_min <= soc_departure_min <= soc_max
        m = all_ok("soc_departure_min")
        rule("soc_min", m & (num["soc_min"] > num["soc_departure_min"] + TOL),
             lambda i: f"must be <= soc_departure_min (= {_fmt(num['soc_departure_min'][i])})")
        m = all_ok("soc_departure_min")
        rule("soc_max", m & (num["soc_max"] < num["soc_departure_min"] - TOL),
             lambda i: f"must be >= soc_departure_min (= {_fmt(num['soc_departure_min'][i])})")
        # stay in (0, 24) h
        stay = num["departure_hour"] + 24 * num["departure_day"] - num["arrival_hour"]
        m = all_ok("arrival_hour", "departure_day")
        rule("departure_hour", m & ~((stay > TOL) & (stay < 24 - TOL)),
             lambda i: (f"the stay departure_hour + 24*departure_day - arrival_hour = "
                        f"{_fmt(stay[i])} h must be in (0, 24) h; set departure_day = 1 "
                        f"for a stay past midnight"))
        # energy: discharge-only cannot raise SOC; charging need within charger capability
        need = (num["soc_departure_min"] - num["soc_arrival"]) * num["battery_kwh"]
        cap = num["efficiency"] * num["charger_kw"] * stay
        m = all_ok("soc_departure_min", "soc_arrival", "battery_kwh", "mode") & (mode == "discharge").to_numpy()
        rule("mode", m & (need > TOL),
             lambda i: (f"a discharge-only reservation cannot raise the SOC: needs "
                        f"soc_departure_min (= {_fmt(num['soc_departure_min'][i])}) <= "
                        f"soc_arrival (= {_fmt(num['soc_arrival'][i])})"))
        m = all_ok("soc_departure_min", "soc_arrival", "battery_kwh", "mode", "efficiency",
                   "charger_kw", "arrival_hour", "departure_hour", "departure_day")
        rule("soc_departure_min", m & (need > cap + 1e-6),
             lambda i: (f"energy need (soc_departure_min - soc_arrival) x battery_kwh = "
                        f"{_fmt(need[i])} kWh exceeds what the charger delivers in the stay: "
                        f"efficiency x charger_kw x stay = {_fmt(num['efficiency'][i])} x "
                        f"{_fmt(num['charger_kw'][i])} kW x {_fmt(stay[i])} h = "
                        f"{_fmt(cap[i])} kWh"))

    # the rejections, one per broken rule, in row then rule order
    id_shown = np.where(missing[:, 0], "", id_text.to_numpy(dtype=object))
    if parts:
        rows = np.concatenate([p[0] for p in parts])
        order = np.lexsort((np.concatenate([np.full(len(p[0]), p[1]) for p in parts]), rows))
        fields = np.concatenate([np.full(len(p[0]), p[2], dtype=object) for p in parts])
        reasons = np.concatenate([np.full(len(p[0]), p[3], dtype=object) if isinstance(p[3], str)
                                  else np.asarray(p[3], dtype=object) for p in parts])
        values = np.empty(len(rows), dtype=object)
        values[:] = list(itertools.chain.from_iterable(
            raw[p[2]].to_numpy()[p[0]].tolist() if p[4] is None else p[4] for p in parts))
        rejected = pd.DataFrame({"row": rows[order] + 1, "ev_id": id_shown[rows[order]],
                                 "field": fields[order], "value": values[order],
                                 "reason": reasons[order]}).reset_index(drop=True)
    else:
        rejected = pd.DataFrame({"row": np.zeros(0, dtype=int), "ev_id": [], "field": [],
                                 "value": [], "reason": []}, dtype=object).astype({"row": int})

    typed = pd.DataFrame({"ev_id": ids.to_numpy()})
    for c in COLUMNS[1:]:
        if c == "mode":
            typed[c] = mode.to_numpy()
        elif c in ("bus", "station", "departure_day"):
            typed[c] = np.where(np.isfinite(num[c]), num[c], -1).astype(int)
        else:
            typed[c] = num[c]
    return rejected, typed


def _fmt(x: float) -> str:
    """Compact number for messages: 19.95, 7, 0.8."""
    return f"{float(x):.6g}"
