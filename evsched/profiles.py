"""Read and validate 15-minute load and renewable profiles (the SimBench extract).

The extract ``data/profiles/simbench_2016_15min.csv.gz`` (see the README there) has a
``time`` column of local wall-clock labels (Europe/Berlin, as SimBench ships them) and one
column per profile:

* load profiles ``<class>_pload`` (e.g. ``H0-A_pload``): active power in p.u. of the
  load's rated power, must lie in [0, :data:`MAX_LOAD_PU` = 2] — SimBench scales every load
  profile to a yearly maximum of exactly 1 p.u.; the bound 2 leaves room for a profile
  normalised to another year or a load above its rating, and catches unit mistakes (W or kW
  instead of p.u.: values of hundreds or thousands);
* renewable profiles (``PV*``, ``WP*``): feed-in in p.u. of installed capacity, must lie in
  [0, 1] (values in [-1e-4, 0), the stand-by consumption of a wind turbine, are clipped to 0
  and logged).

Clock
-----
Local time has daylight saving: on the spring-forward day the labels 02:00-02:45 do not
exist, on the fall-back day 02:00-02:45 appear twice (summer time first). :func:`read_profiles`
maps every label to a *fixed* clock, CET = UTC+01:00 all year, so the series becomes a
regular 15-minute grid without dropping, inventing or averaging a single value. Consequence:
from 27 March to 30 October local activity appears one hour earlier on the CET clock (the
study's region, Zhejiang, has no daylight saving, so a fixed clock is the consistent choice).
Hours ``0..23`` everywhere downstream are CET hours.

Errors
------
Every violation raises :class:`evsched.errors.InputError` naming the file, the timestamp (or
CSV line), the column and the rule: unparseable or missing timestamps, duplicated
timestamps, daylight-saving anomalies (a label that does not exist in local time, a
fall-back label that is not repeated), gaps in the 15-minute grid, off-grid timestamps,
non-numeric values, NaN, ±inf, negative load, load above :data:`MAX_LOAD_PU`, renewable
feed-in outside [0, 1]; and, for the file itself, a directory, content that is not CSV text
(binary, not UTF-8, a broken gzip stream) and repeated column names (which pandas would
otherwise rename silently to ``name.1``). Nothing is
filled or dropped silently: the only repairs are opt-in (``repair=True``: a single missing
15-minute step or an isolated NaN is linearly interpolated) and each is logged at WARNING
level with file, timestamp and column.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import input_error
from evsched.paths import DATA, rel

logger = logging.getLogger(__name__)

PROFILE_FILE = DATA / "profiles" / "simbench_2016_15min.csv.gz"
LOCAL_CLOCK = "Europe/Berlin"
FIXED_CLOCK = "Etc/GMT-1"  # = UTC+01:00 (the POSIX sign is inverted), i.e. CET all year
TIME_FORMAT = "%d.%m.%Y %H:%M"
STEP = pd.Timedelta("15min")
RES_TOLERANCE_PU = 1e-4  # renewable values in [-tol, 0) are stand-by consumption → clipped to 0
MAX_LOAD_PU = 2.0  # plausibility bound of a load profile [p.u. of rated power] (module docstring)

#: Profile classes by column name: ``*_pload`` are loads, everything else renewable feed-in.
def is_load_column(name: str) -> bool:
    """True for a load profile column (``<class>_pload``)."""
    return name.endswith("_pload")


def _source(path) -> str:
    return rel(path)


def _fmt(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M")


def _dst_hint(naive: pd.Timestamp, tz: str) -> str:
    """Say whether a naive timestamp lies in a DST transition hour of ``tz`` (for messages)."""
    idx = pd.DatetimeIndex([naive])
    summer = idx.tz_localize(tz, ambiguous=np.array([True]), nonexistent="NaT")
    winter = idx.tz_localize(tz, ambiguous=np.array([False]), nonexistent="NaT")
    if summer.isna()[0]:
        kind = "spring-forward"
    elif summer[0] != winter[0]:
        kind = "fall-back"
    else:
        return ""
    return (f" ({_fmt(naive)} is in the {kind} hour of daylight saving time in {tz}: "
            f"is the file in local time? read it with clock='{tz}')")


def parse_clock(raw: pd.Series, source: str, *, clock: str | None = LOCAL_CLOCK,
                time_format: str = TIME_FORMAT) -> pd.DatetimeIndex:
    """Turn the ``time`` labels into a naive DatetimeIndex on the fixed CET clock.

    Parameters
    ----------
    raw : the ``time`` column as read (strings)
    source : file name for messages
    clock : IANA zone the labels are wall-clock time of (default Europe/Berlin), or ``None``
        when the labels are already on a fixed clock
    time_format : strptime format of the labels

    Raises
    ------
    InputError
        unparseable/missing label (names the CSV line), duplicated label, nonexistent local
        time (spring-forward gap), a fall-back label that appears once or more than twice.
    """
    naive = pd.to_datetime(raw, format=time_format, errors="coerce")
    bad = np.flatnonzero(naive.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise input_error(source, f"line {i + 2} (row {i})", "time", raw.iloc[i],
                          f"must be a timestamp in format '{time_format}'; "
                          f"{bad.size} row(s) missing or unparseable")
    naive = pd.DatetimeIndex(naive)
    if clock is None:
        dup = naive.duplicated(keep="first")
        if dup.any():
            ts = naive[dup][0]
            raise input_error(source, f"timestamp {_fmt(ts)}", "time", _fmt(ts),
                              "duplicated timestamp: each 15-minute step must appear once"
                              + _dst_hint(ts, LOCAL_CLOCK))
        return naive

    dst = naive.tz_localize(clock, ambiguous=np.ones(len(naive), bool), nonexistent="NaT")
    std = naive.tz_localize(clock, ambiguous=np.zeros(len(naive), bool), nonexistent="NaT")
    nonexistent = np.flatnonzero(dst.isna())
    if nonexistent.size:
        ts = naive[nonexistent[0]]
        raise input_error(source, f"timestamp {_fmt(ts)}", "time", _fmt(ts),
                          f"daylight-saving anomaly: this local time does not exist in {clock} "
                          "(spring-forward gap); the clock jumps from 02:00 to 03:00")
    ambiguous = np.asarray(dst != std)
    counts = pd.Series(naive).groupby(naive).transform("size").to_numpy()
    unamb_dup = (~ambiguous) & (counts > 1)
    if unamb_dup.any():
        ts = naive[np.flatnonzero(unamb_dup)[0]]
        raise input_error(source, f"timestamp {_fmt(ts)}", "time", _fmt(ts),
                          "duplicated timestamp: each 15-minute step must appear once")
    amb_bad = ambiguous & (counts != 2)
    if amb_bad.any():
        i = np.flatnonzero(amb_bad)[0]
        ts = naive[i]
        raise input_error(source, f"timestamp {_fmt(ts)}", "time", _fmt(ts),
                          f"daylight-saving anomaly: this fall-back local time of {clock} appears "
                          f"{counts[i]} time(s); it must appear exactly twice "
                          "(summer time first, then winter time)")
    first = ~naive.duplicated(keep="first")
    local = naive.tz_localize(clock, ambiguous=np.asarray(first), nonexistent="raise")
    return local.tz_convert(FIXED_CLOCK).tz_localize(None)


def validate_profiles(df: pd.DataFrame, source: str = "<profiles>", *, repair: bool = False
                      ) -> pd.DataFrame:
    """Check a profile frame indexed by fixed-clock time; return the (possibly repaired) frame.

    Rules: strictly increasing index on a regular 15-minute grid (no gap, no off-grid
    timestamp), numeric values, no NaN, finite, 0 ≤ load ≤ :data:`MAX_LOAD_PU`, renewable
    feed-in in [0, 1] (values in
    [-1e-4, 0) clipped to 0, logged at INFO). With ``repair=True`` a single missing step and
    an isolated NaN are linearly interpolated and logged at WARNING; anything longer raises.
    """
    idx = pd.DatetimeIndex(df.index)
    if len(idx) < 2:
        raise input_error(source, "whole file", "time", len(idx), "needs at least 2 timestamps")
    off = (idx - idx[0]) % STEP != pd.Timedelta(0)
    if off.any():
        ts = idx[off][0]
        raise input_error(source, f"timestamp {_fmt(ts)}", "time", str(ts),
                          f"off the 15-minute grid that starts at {_fmt(idx[0])}")
    diffs = idx[1:] - idx[:-1]
    back = np.flatnonzero(diffs <= pd.Timedelta(0))
    if back.size:
        ts = idx[back[0] + 1]
        kind = "duplicated" if diffs[back[0]] == pd.Timedelta(0) else "out of order"
        raise input_error(source, f"timestamp {_fmt(ts)}", "time", _fmt(ts),
                          f"{kind} timestamp: time must increase strictly in 15-minute steps")
    gaps = np.flatnonzero(diffs > STEP)
    out = df.copy()
    for g in gaps:
        missing = int(diffs[g] / STEP) - 1
        first_missing = idx[g] + STEP
        if not (repair and missing == 1):
            raise input_error(source, f"timestamp {_fmt(first_missing)}", "time", _fmt(first_missing),
                              f"gap: {missing} missing 15-minute step(s) between {_fmt(idx[g])} "
                              f"and {_fmt(idx[g + 1])}" + _dst_hint(first_missing, LOCAL_CLOCK)
                              + ("" if missing == 1 else "; only a single step can be repaired")
                              + ("" if repair else " (pass repair=True to interpolate a single "
                                                   "missing step)"))
    if gaps.size:
        full = pd.date_range(idx[0], idx[-1], freq=STEP)
        out = out.reindex(full)
        for g in gaps:
            logger.warning("%s: repaired missing timestamp %s by linear interpolation (all columns)",
                           source, _fmt(idx[g] + STEP))
    for col in out.columns:
        values = pd.to_numeric(out[col], errors="coerce")
        nonnum = values.isna() & out[col].notna()
        if nonnum.any():
            ts = out.index[nonnum.to_numpy()][0]
            raise input_error(source, f"timestamp {_fmt(ts)}", col, out.at[ts, col],
                              "must be a number")
        out[col] = values.astype(float)
    missing_steps = out.index.difference(idx)
    nan = out.isna() & ~out.index.isin(missing_steps)[:, None]
    if nan.to_numpy().any():
        for col in out.columns:
            rows = np.flatnonzero(nan[col].to_numpy())
            for r in rows:
                isolated = (0 < r < len(out) - 1 and not np.isnan(out[col].iat[r - 1])
                            and not np.isnan(out[col].iat[r + 1]))
                ts = out.index[r]
                if not (repair and isolated):
                    raise input_error(source, f"timestamp {_fmt(ts)}", col, "NaN",
                                      "missing value (NaN)" + (
                                          "; only an isolated NaN can be repaired" if repair else
                                          " (pass repair=True to interpolate an isolated NaN)"))
                logger.warning("%s: repaired NaN at timestamp %s, column '%s' by linear interpolation",
                               source, _fmt(ts), col)
    if out.isna().to_numpy().any():
        out = out.interpolate(method="linear", limit=1, limit_area="inside")
    for col in out.columns:
        v = out[col].to_numpy()
        inf = np.flatnonzero(np.isinf(v))
        if inf.size:
            ts = out.index[inf[0]]
            raise input_error(source, f"timestamp {_fmt(ts)}", col, float(v[inf[0]]),
                              f"must be a finite number ({inf.size} infinite value(s) in this column)")
        if is_load_column(col):
            neg = np.flatnonzero(v < 0)
            if neg.size:
                ts = out.index[neg[0]]
                raise input_error(source, f"timestamp {_fmt(ts)}", col, float(v[neg[0]]),
                                  f"negative load: a load profile must be >= 0 "
                                  f"({neg.size} negative value(s) in this column)")
            high = np.flatnonzero(v > MAX_LOAD_PU)
            if high.size:
                ts = out.index[high[0]]
                raise input_error(source, f"timestamp {_fmt(ts)}", col, float(v[high[0]]),
                                  f"implausible load: must be <= {MAX_LOAD_PU:g} p.u. of rated "
                                  f"power (SimBench profiles peak at 1 p.u.; W or kW instead of "
                                  f"p.u.?) ({high.size} value(s) above it in this column)")
        else:
            bad = np.flatnonzero((v < -RES_TOLERANCE_PU) | (v > 1.0))
            if bad.size:
                ts = out.index[bad[0]]
                raise input_error(source, f"timestamp {_fmt(ts)}", col, float(v[bad[0]]),
                                  f"renewable feed-in must lie in [0, 1] p.u. of installed capacity "
                                  f"(stand-by values down to -{RES_TOLERANCE_PU:g} are clipped to 0)")
            small = v < 0
            if small.any():
                logger.info("%s: column '%s': %d stand-by value(s) in [-%g, 0) p.u. clipped to 0",
                            source, col, int(small.sum()), RES_TOLERANCE_PU)
                out[col] = np.clip(v, 0.0, None)
    out.index.name = "time"
    return out


def read_profiles(path=None, *, clock: str | None = LOCAL_CLOCK, time_format: str = TIME_FORMAT,
                  repair: bool = False) -> pd.DataFrame:
    """Read a profile CSV (optionally gzip) and return a validated frame on the CET clock.

    Parameters
    ----------
    path : file to read; default the SimBench extract :data:`PROFILE_FILE`
    clock : zone whose wall-clock time the ``time`` labels are (``None`` = already fixed)
    time_format : strptime format of ``time``
    repair : interpolate a single missing step / isolated NaN (logged) instead of raising

    Returns
    -------
    DataFrame indexed by naive ``time`` (CET = UTC+01:00, regular 15-minute grid), one float
    column per profile in p.u. (see module docstring).
    """
    path = PROFILE_FILE if path is None else Path(path)
    source = _source(path)
    if not Path(path).exists():
        raise input_error(source, "whole file", "path", str(path), "file not found")
    if Path(path).is_dir():
        raise input_error(source, "whole file", "path", str(path), "is a directory, not a CSV file")
    try:
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        raw = pd.read_csv(path, dtype={"time": str}, keep_default_na=True)
    except (UnicodeDecodeError, ValueError, OSError, EOFError) as exc:  # incl. pandas parser errors
        raise input_error(source, "whole file", "content", type(exc).__name__,
                          f"cannot be read as CSV text (UTF-8, optionally gzip): {exc}") from None
    names = list(header.iloc[0]) if len(header) else []
    for j, name in enumerate(names):
        if name in names[:j]:
            raise input_error(source, "header", name, name,
                              f"duplicate column (columns {names.index(name) + 1} and {j + 1}): "
                              "each profile must appear once")
    if "time" not in raw.columns:
        raise input_error(source, "header", "time", list(raw.columns), "a 'time' column is required")
    if raw.shape[1] < 2:
        raise input_error(source, "header", "columns", list(raw.columns), "needs at least one profile column")
    time = parse_clock(raw["time"], source, clock=clock, time_format=time_format)
    df = raw.drop(columns="time")
    df.index = time
    return validate_profiles(df, source, repair=repair)


@functools.lru_cache(maxsize=4)
def _cached(path: str) -> pd.DataFrame:
    return read_profiles(path)


def load_profiles(path=None) -> pd.DataFrame:
    """:func:`read_profiles` with default options, cached per path (returns a copy)."""
    return _cached(str(PROFILE_FILE if path is None else Path(path).resolve())).copy()


def synthetic_daily_shape(T: int = 24) -> np.ndarray:
    r"""A smooth synthetic daily load multiplier at T equal steps (tests and benchmarks only;
    the study uses the SimBench history):
    :math:`m(h) = 0.83 + 0.17\cos(2\pi (h-9)/24) - 0.03\cos(4\pi (h-20)/24)`, scaled to a
    maximum of 1 (minimum ≈ 0.66 at 04:00, peak 1.00 at 09:00, ≈ 0.97 at 20:00, the shape of
    one comparable published IEEE-33 study), ``h`` the step's start hour."""
    h = np.arange(T) * 24.0 / T
    s = 0.83 + 0.17 * np.cos(2 * np.pi * (h - 9) / 24) - 0.03 * np.cos(4 * np.pi * (h - 20) / 24)
    return s / s.max()
