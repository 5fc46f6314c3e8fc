r"""Parameter sweeps of the study on dask.distributed: ``evsched sweep SPEC.yaml`` (``make sweep``).

A **sweep spec** (YAML, read with the strict reader :mod:`evsched.yamlio`; keep specs in
``params/sweeps/``, since every ``params/*.yaml`` is a run parameter file)::

    description: S2/S3 over DG size and EV count       # optional, free text
    base: ../default.yaml       # parameter file the cases start from (default params/default.yaml);
                                # a relative path is read from the spec's folder, else from the repository root
    set: {n_evs: 300}           # optional: fixed overrides of every case
    grid:                       # optional: Cartesian product of the listed values
      dg_scale: [0.5, 1.0, 2.0]
      v2g_share: [0.0, 0.3]
    zip:                        # optional: paired lists (equal lengths), crossed with the grid
      pv_buses: [[13, 24], [24, 30]]
      wt_buses: [[18, 33], [13, 18]]
    days: {start: 2016-05-10, end: 2016-12-31, step_days: 1}   # or a list of dates → target_day
    scenarios: [S0, S1, S2, S3]  # default; also the S2 variants of evsched.interpretations

Keys in ``set``/``grid``/``zip`` are the flat parameter names of :func:`evsched.case.load_case`
(as in ``params/default.yaml``) plus:

* ``dg_scale`` — multiplies every ``pv_capacity_kw`` and ``wt_capacity_kw`` (after the other
  keys), 0..10: a parameter transform, so the case is an ordinary parameter set;
* ``load_pf`` — feeder load power factor, 0.7..1.0 (``null``: the history's class power factors;
  :func:`evsched.interpretations.with_load_power_factor`): applied to the built case.

Cases = days × zip rows × grid combinations, in that order. **Every case is validated before
anything runs** (:func:`~evsched.case.load_case`, the feeder's bus ids, the options): an error
names the spec file, the case (its number and swept values) and the parameter.

Outputs in ``DIR`` (default ``results/sweeps/<spec name>/``):

* ``cases.csv`` — one row per case × scenario: ``case_id`` (a stable hash of the case's
  validated parameters and options), the swept keys (lists as JSON), ``day``, ``scenario``,
  every column of ``summary.csv`` (:data:`evsched.report.SUMMARY_COLUMNS`, ``exact`` included),
  ``voltage_deviation_sq_pu2`` (Σ(V−1)²·Δt), ``status`` (``ok``; ``inexact``: kept, flagged, not a
  result; ``error``: the ``error`` column holds the message, e.g. the infeasible hours and buses;
  ``lost``: the worker died, retried by ``--resume``). Rows are sorted by case (spec order) and
  scenario, written atomically (temporary file + rename) every few seconds while the sweep runs,
  so an interrupted sweep keeps what is done. No timings: a rerun is byte-identical, and the same
  spec gives the same file serially, on 1 worker or on N workers (tasks run with one BLAS thread);
* ``cases.parquet`` — the same table, only when ``pyarrow`` is importable;
* ``timings.csv`` (``case_id, scenario, seconds, cpu_s, worker``: wall and CPU time per build
  and scenario) and ``sweep_info.json`` (spec,
  counts, workers, wall time, cases/s, machine): what changes from run to run.

``--resume`` skips the cases whose every requested scenario already has a row in ``cases.csv``
(other than ``lost``); without it an existing ``cases.csv`` is an error, never overwritten.

Execution: ``workers=0`` runs in this process (no dask); ``workers=N`` starts a LocalCluster of N
worker processes with one thread each (default: one per core); ``scheduler="tcp://host:port"``
submits to an existing cluster, which is left unchanged. One task evaluates one case with the
package API (:func:`evsched.case.build_case`, S0/S1/S2/S3 with ``on_inexact="mark"``).

What is computed once and shared: each worker process keeps the SimBench history and the
forecast's training data (``evsched.forecast.default_history``, cached per process) and the
feeder (:func:`_network`) for all its tasks; the day's inputs (:func:`evsched.case.build_case`:
forecast, TOU, fleet, sessions) are built **once per distinct parameter set**: when several
cases share it (they differ only in ``load_pf``) one build task's result (≈1 MB) is shared by
their tasks through dask; a parameter set used by one case is built inside its task (no
transfer). The forecast itself is not split from ``build_case``: it costs ≈20 ms of a case's
≈4 s (the solves and AC checks dominate).
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import itertools
import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import InputError
from evsched.parallel import default_workers
from evsched.paths import PARAMS, RESULTS, ROOT

SPEC_KEYS = ("name", "description", "base", "set", "grid", "zip", "days", "scenarios")
DERIVED_KEYS = {"dg_scale": "multiplies every pv_capacity_kw and wt_capacity_kw, a number in 0..10"}
OPTION_KEYS = {"load_pf": "feeder load power factor, a number in 0.7..1.0 or null (the history's)"}
OPTION_DEFAULTS = {"load_pf": None}
EXTRA_COLUMNS = ["voltage_deviation_sq_pu2"]
STATUSES = ("ok", "inexact", "error", "lost")
DEFAULT_SCENARIOS = ("S0", "S1", "S2", "S3")
WRITE_EVERY_S = 2.0
"""Seconds between two rewrites of ``cases.csv`` while a sweep runs."""


# --------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class SweepCase:
    """One case of a sweep: its validated :class:`~evsched.case.Case`, the post-build options,
    the swept values (``day`` included) and its ids."""

    index: int
    case_id: str
    input_key: str
    case: object
    options: dict
    swept: dict


@dataclass
class Sweep:
    """A validated sweep: its cases (spec order, duplicates merged) and scenarios."""

    source: str
    name: str
    description: str
    scenarios: tuple
    swept_keys: list
    cases: list = field(default_factory=list)
    duplicates: int = 0

    @property
    def n_inputs(self) -> int:
        return len({c.input_key for c in self.cases})

    def describe(self) -> str:
        return (f"sweep '{self.name}' ({self.source}): {len(self.cases)} case(s) × "
                f"{len(self.scenarios)} scenario(s) [{', '.join(self.scenarios)}], "
                f"{self.n_inputs} distinct input(s), swept: {', '.join(self.swept_keys) or '-'}"
                + (f"; {self.duplicates} duplicate case(s) merged" if self.duplicates else ""))


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def case_hash(case, options: dict | None = None) -> str:
    """The ``case_id``: a stable hash of the validated parameters (``Case.model_dump``) and of
    the options that differ from their defaults (so a case without options has the same id in
    every spec)."""
    opts = {k: v for k, v in (options or {}).items() if v != OPTION_DEFAULTS.get(k)}
    payload = {"case": case.model_dump(mode="json")}
    if opts:
        payload["options"] = opts
    return _digest(payload)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _days(value, source: str) -> list[str]:
    """``days:`` → ISO dates (a list, or ``{start, end, step_days}``)."""
    def iso(d, what):
        try:
            return pd.Timestamp(d).strftime("%Y-%m-%d")
        except (ValueError, TypeError):
            raise InputError(f"{source}, days, {what} = {d!r}: must be an ISO date 'YYYY-MM-DD'") from None

    if isinstance(value, list):
        if not value:
            raise InputError(f"{source}, days: the list is empty")
        return [iso(d, f"entry {i + 1}") for i, d in enumerate(value)]
    if isinstance(value, dict):
        unknown = set(value) - {"start", "end", "step_days"}
        if unknown or not {"start", "end"} <= set(value):
            raise InputError(f"{source}, days = {value!r}: a date range is "
                             "{start: YYYY-MM-DD, end: YYYY-MM-DD, step_days: N} (step_days optional, default 1)")
        step = value.get("step_days", 1)
        if not _is_number(step) or int(step) != step or step < 1:
            raise InputError(f"{source}, days, step_days = {step!r}: must be an integer ≥ 1")
        start, end = iso(value["start"], "start"), iso(value["end"], "end")
        if start > end:
            raise InputError(f"{source}, days: start {start} is after end {end}")
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, end, freq=f"{int(step)}D")]
    raise InputError(f"{source}, days = {value!r}: must be a list of dates or "
                     "{start, end, step_days}")


def _known_keys() -> set:
    from evsched.case import case_keys
    return set(case_keys()) | set(DERIVED_KEYS) | set(OPTION_KEYS)


def _check_key(key, source: str, where: str, known: set) -> None:
    if key in known:
        return
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = (f"did you mean '{close[0]}'?" if close else
            f"known: {', '.join(sorted(known))}")
    raise InputError(f"{source}, {where}: unknown parameter '{key}' ({hint})")


def _check_option(key, value, source: str, where: str) -> None:
    if key == "load_pf" and value is not None and not (_is_number(value) and 0.7 <= value <= 1.0):
        raise InputError(f"{source}, {where}, parameter 'load_pf' = {value!r}: must be a number "
                         "in 0.7..1.0 or null (the history's power factors)")
    if key == "dg_scale" and not (_is_number(value) and 0 <= value <= 10):
        raise InputError(f"{source}, {where}, parameter 'dg_scale' = {value!r}: must be a number in 0..10")


def _resolve_base(base, folder: Path, source: str) -> Path | None:
    if base is None:
        return None
    if not isinstance(base, str) or not base.strip():
        raise InputError(f"{source}, base = {base!r}: must be the path of a parameter file")
    p = Path(base)
    for cand in ([p] if p.is_absolute() else [folder / p, ROOT / p]):
        if cand.is_file():
            return cand
    raise InputError(f"{source}, base = {base!r}: file not found (a relative path is read from "
                     f"the spec's folder {folder}, then from the repository root)")


def _show(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def load_spec(spec, source: str | None = None) -> Sweep:
    """Read and validate a sweep spec (a YAML path or a mapping): every case is built as a
    :class:`~evsched.case.Case` and checked against the feeder before anything runs.

    Raises :class:`InputError` naming the spec, the case (number and swept values) and the key.
    """
    from evsched.case import load_case
    from evsched.interpretations import check_scenario
    from evsched.yamlio import load_yaml_mapping

    if isinstance(spec, (str, Path)):
        path = Path(spec)
        raw, source, folder = load_yaml_mapping(path), str(spec), path.resolve().parent
        default_name = path.stem
    elif isinstance(spec, dict):
        raw, source, folder = dict(spec), source or "sweep spec", Path.cwd()
        default_name = "sweep"
    else:
        raise InputError(f"sweep spec: expected a YAML file or a mapping, got {type(spec).__name__}")
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise InputError(f"{source}: unknown spec key(s) {unknown}; a sweep spec has {list(SPEC_KEYS)}")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise InputError(f"{source}, name = {name!r}: must be a plain folder name")
    base = _resolve_base(raw.get("base", str(PARAMS / "default.yaml")), folder, source)
    known = _known_keys()
    fixed = raw.get("set") or {}
    grid = raw.get("grid") or {}
    zipped = raw.get("zip") or {}
    for part, mapping in (("set", fixed), ("grid", grid), ("zip", zipped)):
        if not isinstance(mapping, dict):
            raise InputError(f"{source}, {part}: must be a mapping of parameter names to values")
        for k in mapping:
            _check_key(k, source, part, known)
    for part, mapping in (("grid", grid), ("zip", zipped)):
        for k, v in mapping.items():
            if not isinstance(v, list) or not v:
                raise InputError(f"{source}, {part}, '{k}' = {v!r}: must be a non-empty list of values")
    both = sorted(set(grid) & set(zipped))
    if both:
        raise InputError(f"{source}: {both} appear(s) in both grid and zip; give each key once")
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{source}, zip: the lists must have equal lengths, got {lengths}")
    days = None
    if raw.get("days") is not None:
        days = _days(raw["days"], source)
        clash = sorted({"target_day"} & (set(grid) | set(zipped)))
        if clash:
            raise InputError(f"{source}: target_day is given by days:, remove it from grid/zip")
    scen = raw.get("scenarios", list(DEFAULT_SCENARIOS))
    if not isinstance(scen, list) or not scen:
        raise InputError(f"{source}, scenarios = {scen!r}: must be a non-empty list")
    for s in scen:
        try:
            check_scenario(s)
        except InputError as exc:
            raise InputError(f"{source}, scenarios: {exc}") from None
    if len(set(scen)) != len(scen):
        raise InputError(f"{source}, scenarios = {scen}: a scenario may appear only once")

    zip_rows = [dict(zip(zipped, vals)) for vals in zip(*zipped.values())] if zipped else [{}]
    grid_rows = [dict(zip(grid, vals)) for vals in itertools.product(*grid.values())] if grid else [{}]
    day_rows = [{"target_day": d} for d in days] if days else [{}]
    swept_keys = list(zipped) + list(grid)
    combos = [(d, z, g) for d in day_rows for z in zip_rows for g in grid_rows]
    from evsched.feeders import load_network  # the feeder each case's `network` names
    cases, seen, errors = [], set(), []
    for i, (d, z, g) in enumerate(combos, 1):
        values = {**fixed, **z, **g, **d}
        label = ", ".join(f"{k}={_show(v)!r}" if isinstance(v, str) else f"{k}={_show(v)}"
                          for k, v in {**z, **g, **d}.items()) or "the base case"
        where = f"case {i} of {len(combos)} ({label})"
        try:
            case, options = _validated(values, base, load_case, load_network, source, where)
        except InputError as exc:
            msg = str(exc)
            errors.append(msg if msg.startswith(source) else f"{source}, {where}: {msg}")
            continue
        cid = case_hash(case, options)
        if cid in seen:
            continue
        seen.add(cid)
        swept = {k: values[k] for k in swept_keys}
        swept["day"] = str(case.forecast.get("target_day", ""))
        cases.append(SweepCase(len(cases), cid, case_hash(case), case, options, swept))
    if errors:
        more = f"\n… and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise InputError(f"{len(errors)} of {len(combos)} case(s) rejected before running:\n"
                         + "\n".join(errors[:10]) + more)
    return Sweep(source=source, name=name, description=str(raw.get("description", "")),
                 scenarios=tuple(scen), swept_keys=swept_keys, cases=cases,
                 duplicates=len(combos) - len(cases))


def spec_mapping(spec, *, base=None, params: dict | None = None) -> dict:
    """The sweep spec file ``spec`` as a mapping (for :func:`load_spec`), optionally on another
    ``base`` parameter file (e.g. the run's ``params_file`` in a notebook) and with ``params``
    under its ``set`` (the spec's own ``set``, ``grid``, ``zip`` and ``days`` override them);
    ``base`` is made absolute and ``name`` kept (the file's stem)."""
    from evsched.yamlio import load_yaml_mapping

    path = Path(spec)
    raw = load_yaml_mapping(path)
    source = str(spec)
    if raw.get("set") is not None and not isinstance(raw["set"], dict):
        raise InputError(f"{source}, set: must be a mapping of parameter names to values")
    if base is None:
        base = _resolve_base(raw.get("base", str(PARAMS / "default.yaml")), path.resolve().parent, source)
    return {**raw, "name": raw.get("name", path.stem), "base": str(Path(base).resolve()),
            "set": {**(params or {}), **(raw.get("set") or {})}}


def _validated(values: dict, base, load_case, load_network, source: str, where: str):
    """(Case, options) of one case's flat ``values``; InputError naming spec, case and key."""
    from evsched.params import rewrite_source

    options = dict(OPTION_DEFAULTS)
    params = {}
    for k, v in values.items():
        if k in OPTION_KEYS or k in DERIVED_KEYS:
            _check_option(k, v, source, where)
            if k in OPTION_KEYS:
                options[k] = v
        else:
            params[k] = v
    with rewrite_source({"notebook parameters": f"{source}, {where}"}):
        case = load_case(base, **params)
        if "dg_scale" in values:
            s = float(values["dg_scale"])
            case = load_case(base, **{**params,
                                      "pv_capacity_kw": [float(x) * s for x in case.pv_capacity_kw],
                                      "wt_capacity_kw": [float(x) * s for x in case.wt_capacity_kw]})
    if "target_day" not in case.forecast:
        raise InputError(f"{source}, {where}: no target_day (set it in the base file, set: or days:)")
    with rewrite_source({"case parameter": f"{source}, {where}, case parameter"}):
        case.check_network(load_network(case.network))
    return case, options


def _flat(case) -> dict:
    if hasattr(case, "flat"):
        return dict(case.flat())
    d = case.model_dump(mode="json")
    for group in ("forecast", "tou", "fleet"):
        d.update(d.pop(group, {}) or {})
    return d


def _norm(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if _is_number(v):
        return float(v)
    return str(v)


def case_parameters(sweep: Sweep, case_id: str, swept: dict | None = None,
                    changed_from=PARAMS / "default.yaml") -> tuple[dict, dict]:
    """``(parameters, options)`` of one case of ``sweep``, found by ``case_id`` or else by its
    ``swept`` values (a row of ``cases.csv``: a table written before the parameter set changed
    has other ids): its validated flat parameters (only those that differ from the parameter
    file ``changed_from``, when given: what a parameter file for that case must list) and its
    options (e.g. ``load_pf``)."""
    from evsched.case import load_case

    match = [c for c in sweep.cases if c.case_id == case_id]
    if not match and swept is not None:
        want = {k: _norm(swept[k]) for k in [*sweep.swept_keys, "day"] if k in swept}
        match = [c for c in sweep.cases if all(_norm(c.swept.get(k)) == v for k, v in want.items())]
    if not match:
        raise InputError(f"{sweep.source}: no case with case_id {case_id!r} or swept values {swept!r}")
    c = match[0]
    mine = _flat(c.case)
    if changed_from is not None:
        ref = _flat(load_case(changed_from))
        mine = {k: v for k, v in mine.items() if ref.get(k) != v}
    return mine, {k: v for k, v in c.options.items() if v != OPTION_DEFAULTS.get(k)}


# --------------------------------------------------------------------------- one case (a task)
@functools.lru_cache(maxsize=4)
def _network(network: str = "ieee33"):
    """The feeder a case's ``network`` parameter names, loaded once per process."""
    from evsched.feeders import load_network
    return load_network(network)


class BuildFailed:
    """What a build returns instead of raising (so that dask never re-raises a case's error)."""

    def __init__(self, message: str):
        self.message = message


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()


def build_inputs(case):
    """:func:`evsched.case.build_case` on the process's feeder; a failure is returned as
    :class:`BuildFailed` (its message), never raised."""
    from evsched.case import build_case
    try:
        with _one_thread():
            return build_case(case, _network(case.network))
    except Exception as exc:  # noqa: BLE001 - a failing case is a row, never the end of the sweep
        return BuildFailed(f"{type(exc).__name__}: {exc}")


def evaluate_case(inputs, options: dict, scenario_names) -> tuple[list[dict], list[dict]]:
    """Run the scenarios on one case's inputs (a :class:`~evsched.case.CaseData`, a
    :class:`BuildFailed` or a :class:`~evsched.case.Case` to build here).

    Returns ``(rows, timings)``: one row per scenario (summary columns, ``voltage_deviation_sq_pu2``,
    ``status``, ``error``) and ``{scenario, seconds, worker}``. Errors become rows."""
    from evsched.case import CaseData
    from evsched.interpretations import (
        run,
        voltage_deviation_sq,
        with_load_power_factor,
    )

    worker = f"{socket.gethostname()}:{os.getpid()}"
    t0, c0 = time.perf_counter(), time.process_time()
    if not isinstance(inputs, (CaseData, BuildFailed)):
        inputs = build_inputs(inputs)
    timings = [_timing("build", t0, c0, worker)]
    if isinstance(inputs, BuildFailed):
        return [_error_row(s, inputs.message) for s in scenario_names], timings
    rows = []
    with _one_thread():
        try:
            cd = with_load_power_factor(inputs, options.get("load_pf"))
        except Exception as exc:  # noqa: BLE001
            return [_error_row(s, f"{type(exc).__name__}: {exc}") for s in scenario_names], timings
        for s in scenario_names:
            t1, c1 = time.perf_counter(), time.process_time()
            try:
                r = run(s, cd, on_inexact="mark")
                row = r.summary()
                row["voltage_deviation_sq_pu2"] = voltage_deviation_sq(r.voltages, r.dt_h)
                row["status"] = "ok" if r.exact else "inexact"
                row["error"] = None
            except Exception as exc:  # noqa: BLE001 - infeasible, solver failure, ...
                row = _error_row(s, f"{type(exc).__name__}: {exc}")
            rows.append(row)
            timings.append(_timing(s, t1, c1, worker))
    return rows, timings


def _timing(what: str, t0: float, c0: float, worker: str) -> dict:
    """Wall and CPU seconds since ``t0``/``c0`` (CPU time tells a loaded machine apart)."""
    return {"scenario": what, "seconds": round(time.perf_counter() - t0, 4),
            "cpu_s": round(time.process_time() - c0, 4), "worker": worker}


def _error_row(scenario: str, message: str, status: str = "error") -> dict:
    return {"scenario": scenario, "status": status, "error": " ".join(str(message).split())}


def _case_task(inputs, options, scenario_names):
    """The dask task: one case (module-level so that workers import it by name)."""
    return evaluate_case(inputs, options, scenario_names)


# --------------------------------------------------------------------------- the table
def columns(sweep: Sweep, previous=()) -> list[str]:
    """``cases.csv`` columns: case_id, the swept keys (with those of a resumed table), day,
    scenario, the summary columns, :data:`EXTRA_COLUMNS`, status, error."""
    from evsched.report import SUMMARY_COLUMNS
    tail = [c for c in SUMMARY_COLUMNS if c != "scenario"] + EXTRA_COLUMNS + ["status", "error"]
    fixed = {"case_id", "day", "scenario", *tail}
    swept = list(dict.fromkeys([*sweep.swept_keys, *(c for c in previous if c not in fixed)]))
    return ["case_id", *swept, "day", "scenario", *tail]


def _numeric_columns() -> list[str]:
    from evsched.report import SUMMARY_COLUMNS
    return [c for c in SUMMARY_COLUMNS if c not in ("scenario", "exact", "solver")] + EXTRA_COLUMNS


def _frame(rows: list[dict], cols: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=cols)
    for c in _numeric_columns():
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """``cases.csv`` (atomically: temporary file + rename)."""
    _atomic_write(path, lambda p: df.to_csv(p, index=False, lineterminator="\n"))


def read_cases(out) -> pd.DataFrame:
    """``cases.csv`` of a sweep folder (swept list values stay JSON text; floats read back
    exactly, so that a resumed table is byte-identical to a fresh one)."""
    return pd.read_csv(Path(out) / "cases.csv", float_precision="round_trip")


# --------------------------------------------------------------------------- running
def default_out(sweep: Sweep) -> Path:
    return RESULTS / "sweeps" / sweep.name


@dataclass
class _State:
    """Rows done so far (by case_id), written to DIR as they arrive."""

    sweep: Sweep
    out: Path
    old: pd.DataFrame | None
    rows: dict = field(default_factory=dict)
    timings: list = field(default_factory=list)
    last_write: float = 0.0
    counts: dict = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def add(self, case: SweepCase, rows: list[dict], timings: list[dict]) -> None:
        meta = {"case_id": case.case_id, **{k: _show(v) for k, v in case.swept.items()}}
        self.rows[case.case_id] = [{**meta, **r} for r in rows]
        self.timings += [{"case_id": case.case_id, **t} for t in timings]
        for r in rows:
            self.counts[r["status"]] = self.counts.get(r["status"], 0) + 1
        if time.monotonic() - self.last_write >= WRITE_EVERY_S:
            self.write()

    def table(self) -> pd.DataFrame:
        """Every row: the spec's cases in order (new rows, else those of the resumed table),
        scenarios in spec order, then rows of the resumed table for cases not in this spec."""
        order = {s: i for i, s in enumerate(self.sweep.scenarios)}
        old: dict = {}
        if self.old is not None:
            for r in self.old.to_dict("records"):
                old.setdefault(r["case_id"], []).append(r)
        rows, ids = [], set()
        for c in self.sweep.cases:
            ids.add(c.case_id)
            got = self.rows.get(c.case_id, old.get(c.case_id, []))
            rows += sorted(got, key=lambda r: order.get(r["scenario"], len(order)))
        rows += [r for cid, rs in old.items() if cid not in ids for r in rs]
        extra = [] if self.old is None else list(self.old.columns)
        return _frame(rows, columns(self.sweep, extra))

    def write(self) -> pd.DataFrame:
        df = self.table()
        write_table(df, self.out / "cases.csv")
        if self.timings:
            old_t = self.out / "timings.csv"
            t = pd.DataFrame(self.timings)
            if self.old is not None and old_t.exists():
                prev = pd.read_csv(old_t)
                t = pd.concat([prev[~prev.case_id.isin(self.rows)], t], ignore_index=True)
            _atomic_write(old_t, lambda p: t.to_csv(p, index=False, lineterminator="\n"))
        self.last_write = time.monotonic()
        return df


def _todo(sweep: Sweep, old: pd.DataFrame | None) -> list[SweepCase]:
    if old is None or not len(old):
        return list(sweep.cases)
    done = old[old.status.isin(["ok", "inexact", "error"])]
    have = done.groupby("case_id").scenario.apply(set).to_dict()
    return [c for c in sweep.cases if not set(sweep.scenarios) <= have.get(c.case_id, set())]


def run_sweep(spec, out=None, *, workers: int | None = None, scheduler: str | None = None,
              resume: bool = False, progress: bool = True, log=None) -> pd.DataFrame:
    """Run a sweep (a spec path, mapping or :class:`Sweep`); return the ``cases.csv`` table.

    ``workers``: ``0`` in this process (no dask), ``N`` a LocalCluster of N single-threaded
    worker processes (default: one per core); ``scheduler``: the address of a running dask
    scheduler (then ``workers`` must be None). ``resume`` continues an existing ``cases.csv``.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if scheduler is not None and workers is not None:
        raise InputError("give either a number of workers or a scheduler address, not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise InputError(f"workers = {workers!r}: must be an integer ≥ 0 (0: in this process)")
    sweep = spec if isinstance(spec, Sweep) else load_spec(spec)
    out = Path(out) if out is not None else default_out(sweep)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder")
    table = out / "cases.csv"
    if table.exists() and not resume:
        raise InputError(f"{table} exists: use --resume to continue that sweep, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    old = read_cases(out) if table.exists() else None
    if old is not None and not {"case_id", "scenario", "status"} <= set(old.columns):
        raise InputError(f"{table}: not a sweep table (no case_id/scenario/status columns)")
    todo = _todo(sweep, old)
    state = _State(sweep, out, old)
    mode = ("in-process" if workers == 0 else f"scheduler {scheduler}" if scheduler
            else f"LocalCluster, {workers or default_workers()} worker process(es) × 1 thread")
    log(sweep.describe())
    log(f"→ {out}/  ({len(todo)} to run, {len(sweep.cases) - len(todo)} already done; {mode})")
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    interrupted = False
    bar = _bar(len(todo), sweep.name, progress)
    try:
        if todo:
            runner = _run_serial if workers == 0 else _run_dask
            runner(todo, sweep, state, bar, workers=workers, scheduler=scheduler)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        df = state.write()
        wall = time.perf_counter() - t0
        n_done = sum(1 for c in todo if c.case_id in state.rows)
        info = {"spec": sweep.source, "name": sweep.name, "description": sweep.description,
                "scenarios": list(sweep.scenarios), "swept_keys": sweep.swept_keys,
                "cases": len(sweep.cases), "inputs": sweep.n_inputs, "run": n_done,
                "skipped_resume": len(sweep.cases) - len(todo), "interrupted": interrupted,
                "mode": mode, "workers": workers if workers is not None else (
                    None if scheduler else default_workers()),
                "scheduler": scheduler, "wall_s": round(wall, 2),
                "cases_per_s": round(n_done / wall, 4) if wall > 0 and n_done else None,
                "rows_by_status": state.counts, "started": started,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "machine": f"{platform.machine()}, {default_workers()} cores",
                "python": platform.python_version()}
        _atomic_write(out / "sweep_info.json", lambda p: p.write_text(json.dumps(info, indent=2, default=str)))
    _parquet(df, out)
    c = state.counts
    log(f"done in {wall:.1f} s ({info['cases_per_s'] or 0:.3f} cases/s): rows ok {c['ok']}, inexact "
        f"{c['inexact']}, error {c['error']}, lost {c['lost']} → {table}")
    return df


def _parquet(df: pd.DataFrame, out: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    _atomic_write(out / "cases.parquet", lambda p: df.to_parquet(p, index=False))


def _bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc=f"sweep {name}", unit="case", disable=not enabled or total == 0,
                file=sys.stderr, smoothing=0.05, dynamic_ncols=True)


def _tick(bar, state: _State) -> None:
    bar.update(1)
    c = state.counts
    bar.set_postfix_str(f"inexact {c['inexact']}, error {c['error']}" + (f", lost {c['lost']}" if c["lost"] else ""),
                        refresh=False)


def _shared_inputs(todo: list[SweepCase]) -> dict:
    """input_key → number of cases using it."""
    n: dict = {}
    for c in todo:
        n[c.input_key] = n.get(c.input_key, 0) + 1
    return n


def _run_serial(todo, sweep, state, bar, **_) -> None:
    uses = _shared_inputs(todo)
    built: dict = {}
    for c in todo:
        if uses[c.input_key] > 1 and c.input_key not in built:
            built[c.input_key] = build_inputs(c.case)
        rows, timings = evaluate_case(built.get(c.input_key, c.case), c.options, sweep.scenarios)
        uses[c.input_key] -= 1
        if not uses[c.input_key]:
            built.pop(c.input_key, None)
        state.add(c, rows, timings)
        _tick(bar, state)


def _lost(exc) -> bool:
    import asyncio
    import concurrent.futures

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    return isinstance(exc, (KilledWorker, FutureCancelledError, CommClosedError, asyncio.CancelledError,
                            concurrent.futures.CancelledError, TimeoutError, OSError))


def _run_dask(todo, sweep, state, bar, workers=None, scheduler=None) -> None:
    import logging

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    else:
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                               processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        uses = _shared_inputs(todo)
        builds, futures = {}, {}
        for c in todo:
            inputs = c.case
            if uses[c.input_key] > 1:
                if c.input_key not in builds:
                    builds[c.input_key] = client.submit(build_inputs, c.case, pure=False,
                                                        key=f"evsched-build-{c.input_key}-{os.getpid()}")
                inputs = builds[c.input_key]
            fut = client.submit(_case_task, inputs, c.options, sweep.scenarios, pure=False,
                                key=f"evsched-case-{c.case_id}-{os.getpid()}")
            futures[fut.key] = (fut, c)
        builds.clear()  # the case futures hold the shared inputs until they are done
        for fut in as_completed([f for f, _ in futures.values()]):
            _, c = futures.pop(fut.key)
            try:
                rows, timings = fut.result()
            except Exception as exc:  # noqa: BLE001
                status = "lost" if _lost(exc) else "error"
                rows = [_error_row(s, f"{type(exc).__name__}: {exc}", status) for s in sweep.scenarios]
                timings = []
            fut.release()
            state.add(c, rows, timings)
            _tick(bar, state)
    finally:
        for f, _ in futures.values():
            f.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
