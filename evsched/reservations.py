"""EV reservation requests: the CSV schema, loading and row-by-row validation.

One row per reservation (one EV, one stay at one charging station). Units are in the column
names; buses are Baran & Wu ids (1 = substation); hours are clock hours of the study day.

Schema (see also ``data/reservations/README.md``; :data:`SCHEMA` is the single source):

=====================  ======  ===========================================================
column                 unit    allowed values
=====================  ======  ===========================================================
ev_id                  --      non-empty text, unique in the file
bus                    --      bus id of the network (where the owner lives / works)
station                --      bus id of one of the charging stations of the case
arrival_hour           h       0 <= arrival_hour < 24 (fractions allowed: 18.25 = 18:15)
departure_hour         h       0 <= departure_hour < 24
departure_day          --      0 = leaves the same day, 1 = leaves the next day (overnight)
mode                   --      'charge' (charge only), 'discharge' (discharge only, V2G
                               seller), 'both' (charge and discharge, V2G)
battery_kwh            kWh     > 0
soc_arrival            --      0..1, state of charge on arrival
soc_departure_min      --      0..1, SOC the owner needs when leaving
soc_min                --      0..1, floor the station may discharge to; <= soc_departure_min
soc_max                --      0..1, ceiling the station may charge to; >= soc_departure_min
charger_kw             kW      > 0, active-power rating of the charger (both directions)
charger_kva            kVA     >= charger_kw, apparent-power rating (reactive support)
efficiency             --      0 < efficiency <= 1, one-way charge = discharge efficiency
=====================  ======  ===========================================================

Cross-field rules:

* the stay ``departure_hour + 24·departure_day − arrival_hour`` lies in (0, 24) h;
* the energy need ``(soc_departure_min − soc_arrival)·battery_kwh`` does not exceed what the
  charger can deliver to the battery in the stay, ``efficiency·charger_kw·stay`` [kWh];
* a 'discharge' (discharge-only) reservation cannot raise the SOC: ``soc_departure_min ≤
  soc_arrival``.

Nothing is clipped or silently dropped: :func:`validate_reservations` either raises on the
first broken rule (``on_error="raise"``, file order, then rule order) or rejects every bad
row and lists each broken rule (``on_error="skip"``) with ``row`` (1-based data row, the
header is not counted), ``ev_id``, ``field``, ``value`` (as written) and ``reason``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import InputError, input_error

MODES = ("charge", "discharge", "both")
"""Allowed ``mode`` values: charge only, discharge only, bidirectional."""


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    kind: str  # 'text', 'int', 'float', 'mode'
    allowed: str


SCHEMA: tuple[Column, ...] = (
    Column("ev_id", "-", "text", "non-empty text, unique in the file"),
    Column("bus", "-", "int", "bus id of the network"),
    Column("station", "-", "int", "bus id of a charging station of the case"),
    Column("arrival_hour", "h", "float", "0 <= value < 24"),
    Column("departure_hour", "h", "float", "0 <= value < 24"),
    Column("departure_day", "-", "int", "0 (same day) or 1 (next day)"),
    Column("mode", "-", "mode", "'charge', 'discharge' or 'both'"),
    Column("battery_kwh", "kWh", "float", "> 0"),
    Column("soc_arrival", "-", "float", "0..1"),
    Column("soc_departure_min", "-", "float", "0..1, soc_min <= value <= soc_max"),
    Column("soc_min", "-", "float", "0..1"),
    Column("soc_max", "-", "float", "0..1"),
    Column("charger_kw", "kW", "float", "> 0"),
    Column("charger_kva", "kVA", "float", ">= charger_kw"),
    Column("efficiency", "-", "float", "0 < value <= 1"),
)
COLUMNS = [c.name for c in SCHEMA]
_NUMERIC = [c.name for c in SCHEMA if c.kind in ("int", "float")]
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none"}
TOL = 1e-9

# --- the rules' texts (the tests check them verbatim) ---------------------------------
MSG_MISSING = "missing value"
MSG_NOT_NUMBER = "not a number"
MSG_NOT_INTEGER = "must be a whole number"
MSG_EMPTY_ID = "must be non-empty text"
MSG_HOUR = "must be a clock hour in [0, 24)"
MSG_DAY = "must be 0 (same day) or 1 (next day, overnight stay)"
MSG_MODE = "must be one of 'charge', 'discharge', 'both'"
MSG_POSITIVE = "must be > 0"
MSG_SOC = "must be a state of charge in [0, 1]"
MSG_EFFICIENCY = "must be in (0, 1]"


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
    """

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    n_rows: int
    source: str

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


def _error(source, row, ev_id, field, value, reason) -> InputError:
    return input_error(source, f"row {row} (ev_id {ev_id!r})", field, value, reason)


def read_reservations(path) -> pd.DataFrame:
    """Read a reservation CSV as text (no type conversion: validation reports what is written)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)


def validate_reservations(data, network, station_buses, on_error: str = "raise",
                          source: str | None = None, verbose: bool = False) -> ValidationReport:
    """Check every reservation row against :data:`SCHEMA` and the cross-field rules.

    Parameters
    ----------
    data : path of a CSV file, or a DataFrame with the :data:`COLUMNS`
    network : :class:`evsched.network.Network` (bus ids for ``bus`` and ``station``)
    station_buses : bus ids of the case's charging stations
    on_error : ``"raise"`` — raise :class:`InputError` at the first broken rule (file order);
        ``"skip"`` — reject every bad row and report each broken rule
    source : name used in messages (default: the file path, or ``"reservations"``)
    verbose : print the accepted/rejected counts (and, when skipping, every rejection)

    Returns
    -------
    ValidationReport
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(data, (str, Path)):
        source = source or str(data)
        raw = read_reservations(data)
    else:
        source = source or "reservations"
        raw = pd.DataFrame(data).reset_index(drop=True)
    _check_header(raw, source)
    raw = raw[COLUMNS]
    problems, typed = _find_problems(raw, network, station_buses)
    problems.sort(key=lambda p: (p[0], p[1]))  # row, then rule order
    if problems and on_error == "raise":
        row_i, _, field, reason = problems[0]
        err = _error(source, row_i + 1, _id_text(raw, row_i), field, raw.at[row_i, field], reason)
        err.row, err.n_rows = row_i + 1, len(raw)  # for callers that report progress
        raise err
    rejected = pd.DataFrame(
        [(r + 1, _id_text(raw, r), f, raw.at[r, f], why) for r, _, f, why in problems],
        columns=["row", "ev_id", "field", "value", "reason"])
    bad_rows = sorted({p[0] for p in problems})
    accepted = typed.drop(index=bad_rows).reset_index(drop=True)
    report = ValidationReport(accepted, rejected, len(raw), source)
    if verbose:
        for m in report.messages():
            print(m)
        print(report.summary())
    return report


def load_reservations(data, network, station_buses, on_error: str = "raise",
                      source: str | None = None, verbose: bool = False) -> pd.DataFrame:
    """Validate and return the accepted reservations (typed); see :func:`validate_reservations`."""
    return validate_reservations(data, network, station_buses, on_error, source, verbose).accepted


# --- internals -------------------------------------------------------------------------
def _id_text(raw: pd.DataFrame, i: int) -> str:
    v = raw.at[i, "ev_id"]
    return "" if _is_missing(v) else str(v)


def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in _MISSING_TEXT


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


def _find_problems(raw: pd.DataFrame, network, station_buses):
    """Vectorised checks. Returns ``[(row_index, rule_no, field, reason)]`` and typed frame."""
    n = len(raw)
    problems: list[tuple[int, int, str, str]] = []
    rule_no = iter(range(10_000))

    def flag(mask, field, reason):
        k = next(rule_no)
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            problems.append((int(i), k, field, reason if isinstance(reason, str) else reason(i)))

    missing = raw.map(_is_missing)
    for c in COLUMNS:
        flag(missing[c].to_numpy(), c, MSG_MISSING)
    ok = ~missing.to_numpy()  # cell usable so far
    col = {c: j for j, c in enumerate(COLUMNS)}

    # ev_id: non-empty text, unique
    ids = raw["ev_id"].map(lambda v: "" if _is_missing(v) else str(v).strip())
    first_seen: dict[str, int] = {}
    dup = np.zeros(n, dtype=bool)
    first = np.zeros(n, dtype=int)
    for i, v in enumerate(ids):
        if not v:
            continue
        if v in first_seen:
            dup[i], first[i] = True, first_seen[v] + 1
        else:
            first_seen[v] = i
    flag(dup, "ev_id", lambda i: _msg_duplicate(first[i]))

    # numbers
    num = {}
    for c in _NUMERIC:
        v = pd.to_numeric(raw[c].map(lambda s: s.strip() if isinstance(s, str) else s),
                          errors="coerce").to_numpy(dtype=float)
        bad = ok[:, col[c]] & ~np.isfinite(v)
        flag(bad, c, MSG_NOT_NUMBER)
        ok[:, col[c]] &= ~bad
        num[c] = v
    for c in ("bus", "station", "departure_day"):
        bad = ok[:, col[c]] & (num[c] != np.round(num[c]))
        flag(bad, c, MSG_NOT_INTEGER)
        ok[:, col[c]] &= ~bad

    def rule(c, bad_mask, reason):
        bad = ok[:, col[c]] & np.asarray(bad_mask, dtype=bool)
        flag(bad, c, reason)
        ok[:, col[c]] &= ~bad

    bus_ids = np.asarray(network.bus_ids)
    stations = np.asarray(list(station_buses))
    with np.errstate(invalid="ignore"):
        rule("bus", ~np.isin(num["bus"], bus_ids), _msg_bus(bus_ids))
        rule("station", ~np.isin(num["station"], stations), _msg_station(stations))
        for c in ("arrival_hour", "departure_hour"):
            rule(c, ~((num[c] >= 0) & (num[c] < 24)), MSG_HOUR)
        rule("departure_day", ~np.isin(num["departure_day"], [0, 1]), MSG_DAY)
        mode = raw["mode"].map(lambda s: s.strip().lower() if isinstance(s, str) else s)
        rule("mode", ~mode.isin(MODES).to_numpy(), MSG_MODE)
        rule("battery_kwh", ~(num["battery_kwh"] > 0), MSG_POSITIVE)
        for c in ("soc_arrival", "soc_departure_min", "soc_min", "soc_max"):
            rule(c, ~((num[c] >= 0) & (num[c] <= 1)), MSG_SOC)
        rule("charger_kw", ~(num["charger_kw"] > 0), MSG_POSITIVE)
        rule("efficiency", ~((num["efficiency"] > 0) & (num["efficiency"] <= 1)), MSG_EFFICIENCY)

    def all_ok(*cs):
        return np.logical_and.reduce([ok[:, col[c]] for c in cs])

    with np.errstate(invalid="ignore"):
        # apparent-power rating at least the active rating
        both = all_ok("charger_kw")
        rule("charger_kva", both & ~(num["charger_kva"] >= num["charger_kw"] - TOL),
             lambda i: f"must be >= charger_kw (= {_fmt(num['charger_kw'][i])} kW)")
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

    typed = pd.DataFrame({"ev_id": ids})
    for c in COLUMNS[1:]:
        if c == "mode":
            typed[c] = mode
        elif c in ("bus", "station", "departure_day"):
            typed[c] = np.where(np.isfinite(num[c]), num[c], -1).astype(int)
        else:
            typed[c] = num[c]
    return problems, typed


def _fmt(x: float) -> str:
    """Compact number for messages: 19.95, 7, 0.8."""
    return f"{float(x):.6g}"
