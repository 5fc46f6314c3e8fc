r"""Monte Carlo: N samples × the four policies → ``samples.csv``, ``summary.csv`` and friends.

:func:`prepare` (:func:`prepare_many`) computes what does not depend on the sample (the
certified day-ahead plan, the robust plan); :func:`run` (:func:`run_many`) evaluates samples,
in this process or on a local ``dask.distributed`` cluster of single-threaded processes
(``n_workers > 1``, :class:`Pool`: one task per sample). Each process compiles its MPC models
once, on canonical data (the day as reserved and forecast), and every sample only updates their
data; the hindsight model is built per sample (:data:`HINDSIGHT_PATTERN`). So a sample's numbers
do not depend on which worker ran it or in which order (checked by a test: 1 and 2 workers give
byte-identical tables).

Tables (no timings in any of them: they go to ``timings.json``, so every table of a rerun is
byte-identical; floats are written with :data:`FLOAT_FORMAT`):

* ``samples.csv`` — one row per (sample, policy): :data:`SAMPLE_COLUMNS`;
* ``summary.csv`` — one row per (policy, metric): ``n, mean, p5, p50, p95`` over the samples
  where the policy has a value (a sample whose hindsight problem is infeasible keeps its rows
  for the other policies, with ``hindsight_feasible = False``);
* ``paired.csv`` — per sample whose hindsight is feasible: the value of re-dispatch
  (day_ahead − mpc) and each policy's regret to hindsight (network loss and network +
  converter loss) [kWh];
* ``infeasible.csv`` — every sample/policy whose optimisation failed, with the solver's
  diagnosis (hindsight infeasible, MPC hours that fell back).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evsched.errors import InputError, OptimisationError
from evsched.parallel import Pool
from evsched.uncertainty.deviations import DeviationModel, ForecastErrors, draw_sample
from evsched.uncertainty.execution import METRICS, day_metrics
from evsched.uncertainty.policies import (
    MPC,
    POLICIES,
    Hindsight,
    Plan,
    day_ahead_plan,
    robust_plan,
)

FLOAT_FORMAT = "%.7g"
SAMPLE_COLUMNS = ["sample", "policy", "status", "hindsight_feasible", "day", "n_reservations", "n_shown",
                  "unreachable_kwh", *METRICS, "max_relaxation_gap_rel", "ac_max_voltage_mismatch_pu",
                  "solver_inaccurate", "mpc_fallback_steps", "mpc_inexact_steps", "station_deviation_kwh"]
"""Columns of ``samples.csv`` (metrics: :data:`evsched.uncertainty.execution.METRICS`)."""
SUMMARY_METRICS = METRICS + ["total_loss_kwh"]
"""Metrics of ``summary.csv``: those of the executed day plus network + converter loss."""
HINDSIGHT_PATTERN = "exact"
"""How the hindsight model is built per sample (:class:`~evsched.uncertainty.policies.Hindsight`)."""
AC_VOLTAGE_TOL_PU, AC_LOSS_TOL_REL = 1e-4, 0.005
"""Certification of a hindsight optimum (as :attr:`evsched.scenarios.ScenarioResult.exact`)."""


@dataclass
class Setup:
    """Everything a worker needs (picklable): the case, the deviation model, the forecast
    errors, the plans and the options."""

    cd: object
    model: DeviationModel
    errors: ForecastErrors
    plans: dict
    reactive: bool = True
    solver: str | None = None
    policies: tuple = POLICIES
    timings: dict = field(default_factory=dict)

    def engine_key(self) -> str:
        c = self.cd.case
        return json.dumps([c.model_dump(mode="json"), self.reactive, self.solver,
                           float(self.model.arrival_delays_h.max()), self.model.max_late_departure_h,
                           len(self.cd.reservations)], sort_keys=True, default=str)


def check_policies(policies) -> tuple:
    bad = [p for p in policies if p not in POLICIES]
    if bad or not policies:
        raise InputError(f"policies = {list(policies)!r}: each must be one of {list(POLICIES)}")
    return tuple(p for p in POLICIES if p in policies)


def prepare(cd, model: DeviationModel, errors: ForecastErrors, reactive: bool = True,
            policies=POLICIES, solver: str | None = None, day_ahead: Plan | None = None,
            robust_kw: dict | None = None) -> Setup:
    """The sample-independent part: the day-ahead plan (certified S3/S2) and, if asked, the
    robust plan sized on training samples of ``model`` (:func:`evsched.uncertainty.policies.robust_plan`)."""
    from evsched.uncertainty.acflow import RadialPowerFlow
    from evsched.uncertainty.deviations import check_hourly
    check_hourly(cd)
    policies = check_policies(policies)
    timings = {}
    plans = {}
    t0 = time.perf_counter()
    plans["day_ahead"] = day_ahead or day_ahead_plan(cd, reactive, solver)
    timings["day_ahead_plan_s"] = time.perf_counter() - t0
    if "robust" in policies:
        t0 = time.perf_counter()
        plans["robust"] = robust_plan(cd, model, errors, reactive, solver=solver,
                                      pf=RadialPowerFlow(cd.network, cd.case.v_slack_pu), **(robust_kw or {}))
        timings["robust_plan_s"] = time.perf_counter() - t0
    return Setup(cd, model, errors, plans, reactive, solver, policies, timings)


class Engine:
    """Per-process compiled models (MPC horizons, hindsight) and the AC power flow."""

    def __init__(self, setup: Setup):
        from evsched.uncertainty.acflow import RadialPowerFlow
        t0 = time.perf_counter()
        cd = setup.cd
        self.pf = RadialPowerFlow(cd.network, cd.case.v_slack_pu)
        canonical = DeviationModel()  # the warm-up data: an engine is the same whoever built it
        self.mpc = MPC(cd, canonical, setup.errors, setup.reactive, setup.solver) \
            if "mpc" in setup.policies else None
        t1 = time.perf_counter()
        self.hindsight = Hindsight(cd, setup.errors, setup.model.arrival_delays_h.max(),
                                   setup.model.max_late_departure_h, setup.reactive, setup.solver,
                                   pattern=HINDSIGHT_PATTERN) \
            if "hindsight" in setup.policies else None
        self.timings = {"mpc_compile_s": t1 - t0, "hindsight_compile_s": time.perf_counter() - t1}


_ENGINES: dict[str, Engine] = {}


def engine(setup: Setup) -> Engine:
    """The process's :class:`Engine` for this case (built at the first call)."""
    key = setup.engine_key()
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = Engine(setup)
    eng = _ENGINES[key]
    if eng.mpc is None and "mpc" in setup.policies or eng.hindsight is None and "hindsight" in setup.policies:
        _ENGINES[key] = eng = Engine(setup)
    return eng


def evaluate(setup: Setup, sample, eng: Engine | None = None) -> tuple[list[dict], list[dict], dict]:
    """Rows of ``samples.csv`` for one sample, the failures (``infeasible.csv`` rows) and the
    wall time of each policy [s]."""
    eng = eng or engine(setup)
    cd = setup.cd
    if eng.mpc is not None:
        eng.mpc.dev = setup.model
    rows, fails, wall = [], [], {}
    base = {"sample": sample.index, "day": sample.day_label, "n_reservations": len(sample.show),
            "n_shown": sample.n_shown, "unreachable_kwh": float(sample.unreachable_kwh.sum())}
    hind_ok = np.nan
    for pol in setup.policies:
        t0, c0 = time.perf_counter(), time.process_time()
        extra = {"max_relaxation_gap_rel": np.nan, "ac_max_voltage_mismatch_pu": np.nan, "solver_inaccurate": np.nan,
                 "mpc_fallback_steps": np.nan, "mpc_inexact_steps": np.nan, "station_deviation_kwh": np.nan}
        status, message, ev, ren, vsocp = "ok", "", None, None, None
        if pol in ("day_ahead", "robust"):
            ev, ren = setup.plans[pol].execute(cd, sample)
        elif pol == "mpc":
            d = eng.mpc.run(sample)
            ev, ren, status, message = d.ev, d.ren, d.status, d.message
            extra.update({"max_relaxation_gap_rel": d.stats["max_relaxation_gap_rel"],
                          "solver_inaccurate": d.stats["inaccurate_steps"],
                          "mpc_fallback_steps": d.stats["fallback_steps"],
                          "mpc_inexact_steps": d.stats["inexact_steps"],
                          "station_deviation_kwh": float(d.stats["station_deviation_kwh"])})
        else:
            d = eng.hindsight.run(sample)
            ev, ren, status, message, vsocp = d.ev, d.ren, d.status, d.message, d.voltages_pu
            extra["max_relaxation_gap_rel"] = d.stats.get("max_relaxation_gap_rel", np.nan)
            extra["solver_inaccurate"] = d.stats.get("inaccurate", np.nan)
            hind_ok = status != "infeasible"
        metrics = {k: np.nan for k in METRICS}
        if ev is not None:
            try:
                metrics, ac = day_metrics(cd, sample, ev, ren, eng.pf, cd.dt_h)
            except OptimisationError as exc:
                status, message = "ac_failed", str(exc)
            else:
                if vsocp is not None:
                    mism = float(np.abs(ac.v_pu - vsocp).max())
                    extra["ac_max_voltage_mismatch_pu"] = mism
                    opf_loss = d.stats.get("opf_loss_kwh", np.nan)
                    if status == "ok" and (mism > AC_VOLTAGE_TOL_PU or
                                           abs(opf_loss - metrics["loss_kwh"]) > AC_LOSS_TOL_REL * metrics["loss_kwh"]):
                        status, message = "inexact", (f"SOCP vs AC: max |ΔV| {mism:.1e} p.u., loss "
                                                      f"{opf_loss:.3f} vs {metrics['loss_kwh']:.3f} kWh")
        wall[pol] = time.perf_counter() - t0
        wall[f"{pol}_cpu"] = time.process_time() - c0
        if message:
            fails.append({"sample": sample.index, "policy": pol, "status": status, "message": message})
        rows.append({**base, "policy": pol, "status": status, **metrics, **extra})
    for r in rows:
        r["hindsight_feasible"] = hind_ok
    return rows, fails, wall


def _run_block(setup: Setup, indices: list[int]) -> tuple[list[dict], list[dict], list[dict], dict]:
    t0, c0 = time.perf_counter(), time.process_time()
    eng = engine(setup)
    build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows, fails, walls = [], [], []
    for i in indices:
        s = draw_sample(setup.model, setup.cd.reservations, setup.errors, i)
        r, f, w = evaluate(setup, s, eng)
        rows += r
        fails += f
        walls.append({"sample": i, **w})
    return rows, fails, walls, {"engine_build_s": build, "engine_build_cpu_s": build_cpu, **eng.timings,
                                "pid": os.getpid()}


@dataclass
class MonteCarlo:
    """Results of :func:`run`: ``samples`` (``samples.csv``), ``failures`` (``infeasible.csv``)
    and ``timings`` (wall times; never in a table)."""

    samples: pd.DataFrame
    failures: pd.DataFrame
    timings: dict

    def summary(self) -> pd.DataFrame:
        return summarise(self.samples)

    def paired(self) -> pd.DataFrame:
        return paired_differences(self.samples)


def run(setup: Setup, indices, n_workers: int = 1) -> MonteCarlo:
    """Evaluate samples ``indices`` under every policy of ``setup`` (see module docstring)."""
    return run_many({"": setup}, {"": indices}, n_workers)[""]


def _robust_task(cd, model, errors, reactive, solver, robust_kw):
    from evsched.uncertainty.acflow import RadialPowerFlow
    t0 = time.perf_counter()
    plan = robust_plan(cd, model, errors, reactive, solver=solver,
                       pf=RadialPowerFlow(cd.network, cd.case.v_slack_pu), **(robust_kw or {}))
    plan.info["seconds"] = time.perf_counter() - t0
    return plan


def run_many(setups: dict, indices: dict, n_workers: int = 1, pool: Pool | None = None) -> dict:
    """:func:`run` for several setups (e.g. no-show rates) on one pool: ``{label: MonteCarlo}``;
    one task per sample, so the workers stay balanced."""
    own = pool is None
    pool = pool or Pool(n_workers)
    t0 = time.perf_counter()
    with (pool if own else _nullcontext(pool)):
        handles = {k: pool.scatter(s) for k, s in setups.items()}
        tasks = [(k, int(i)) for k in setups for i in indices[k]]
        parts = pool.map(_run_block, [(handles[k], [i]) for k, i in tasks])
    out = {}
    order = {p: j for j, p in enumerate(POLICIES)}
    for k, setup in setups.items():
        mine = [p for (label, _), p in zip(tasks, parts) if label == k]
        samples = pd.DataFrame([r for p in mine for r in p[0]], columns=SAMPLE_COLUMNS)
        samples = samples.sort_values(["sample", "policy"], key=lambda c: c.map(order) if c.name == "policy" else c,
                                      kind="stable").reset_index(drop=True)
        failures = pd.DataFrame([f for p in mine for f in p[1]], columns=["sample", "policy", "status", "message"])
        failures = failures.sort_values(["sample", "policy"], kind="stable").reset_index(drop=True)
        wall = pd.DataFrame([w for p in mine for w in p[2]])
        out[k] = MonteCarlo(samples, failures, {
            "total_s": time.perf_counter() - t0, "n_workers": pool.n_workers, "n_samples": len(mine),
            "engines": sorted({json.dumps(p[3], sort_keys=True) for p in mine}),
            "per_sample_s": {pol: float(wall[pol].mean()) for pol in setup.policies if pol in wall},
            "per_sample_cpu_s": {pol: float(wall[f"{pol}_cpu"].mean()) for pol in setup.policies if pol in wall},
            "cpu_s": float(sum(wall[f"{pol}_cpu"].sum() for pol in setup.policies if pol in wall)),
            **setup.timings})
    return out


class _nullcontext:
    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v

    def __exit__(self, *exc):
        return False


def prepare_many(cd, models: dict, errors: ForecastErrors, reactive: bool = True, policies=POLICIES,
                 solver: str | None = None, robust_kw: dict | None = None, pool: Pool | None = None,
                 day_ahead: Plan | None = None) -> dict:
    """:func:`prepare` for several deviation models ``{label: DeviationModel}`` (one day-ahead
    plan; the robust plans computed in parallel on ``pool``)."""
    from evsched.uncertainty.deviations import check_hourly
    check_hourly(cd)
    policies = check_policies(policies)
    t0 = time.perf_counter()
    da = day_ahead or day_ahead_plan(cd, reactive, solver)
    t_da = time.perf_counter() - t0
    robust = {}
    if "robust" in policies:
        pool = pool or Pool(1)
        args = [(cd, m, errors, reactive, solver, robust_kw) for m in models.values()]
        robust = dict(zip(models, pool.map(_robust_task, args)))
    return {k: Setup(cd, m, errors, {"day_ahead": da, **({"robust": robust[k]} if robust else {})},
                     reactive, solver, policies,
                     {"day_ahead_plan_s": t_da, **({"robust_plan_s": robust[k].info["seconds"]} if robust else {})})
            for k, m in models.items()}


# --- tables -------------------------------------------------------------------------------------------

def summarise(samples: pd.DataFrame, metrics=SUMMARY_METRICS) -> pd.DataFrame:
    """Per policy and metric: ``n, mean, p5, p50, p95`` over the samples with a value."""
    df = samples.assign(total_loss_kwh=samples["loss_kwh"] + samples["converter_loss_kwh"])
    rows = []
    for pol in [p for p in POLICIES if p in set(df["policy"])]:
        g = df[df["policy"] == pol]
        for m in metrics:
            v = g[m].to_numpy(float)
            v = v[np.isfinite(v)]
            q = np.percentile(v, [5, 50, 95]) if v.size else [np.nan] * 3
            rows.append({"policy": pol, "metric": m, "n": int(v.size), "mean": float(v.mean()) if v.size else np.nan,
                         "p5": q[0], "p50": q[1], "p95": q[2]})
    return pd.DataFrame(rows)


def paired_differences(samples: pd.DataFrame) -> pd.DataFrame:
    """Per sample whose hindsight optimum exists: value of re-dispatch ``day_ahead − mpc`` and
    the regret ``policy − hindsight``, on the network loss and on network + converter loss [kWh]."""
    df = samples.assign(total_loss_kwh=samples["loss_kwh"] + samples["converter_loss_kwh"])
    ok = df[df["policy"] == "hindsight"].query("status == 'ok'")["sample"]
    df = df[df["sample"].isin(ok)]
    out = pd.DataFrame({"sample": sorted(ok)})
    for metric, tag in (("loss_kwh", "loss"), ("total_loss_kwh", "total_loss")):
        wide = df.pivot(index="sample", columns="policy", values=metric).reindex(out["sample"])
        if {"day_ahead", "mpc"} <= set(wide.columns):
            out[f"value_of_redispatch_{tag}_kwh"] = (wide["day_ahead"] - wide["mpc"]).to_numpy()
        for pol in ("day_ahead", "mpc", "robust"):
            if pol in wide.columns:
                out[f"regret_{pol}_{tag}_kwh"] = (wide[pol] - wide["hindsight"]).to_numpy()
    return out


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """CSV with :data:`FLOAT_FORMAT` (byte-identical for identical numbers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format=FLOAT_FORMAT)
    return path


def write_results(mc: MonteCarlo, out_dir, prefix: str = "") -> dict:
    """``samples.csv``, ``summary.csv``, ``paired.csv``, ``infeasible.csv`` (with ``prefix``)
    into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    return {name: write_table(df, out / f"{prefix}{name}.csv") for name, df in
            (("samples", mc.samples), ("summary", mc.summary()), ("paired", mc.paired()),
             ("infeasible", mc.failures))}


# --- the whole study of notebook 06 ----------------------------------------------------------------

def _evaluate_task(setup: Setup, sample) -> list[dict]:
    return evaluate(setup, sample)[0]


def summarise_paired(paired: pd.DataFrame) -> pd.DataFrame:
    """``metric, n, mean, p5, p50, p95`` of every column of :func:`paired_differences`."""
    rows = []
    for col in [c for c in paired.columns if c != "sample"]:
        v = paired[col].to_numpy(float)
        v = v[np.isfinite(v)]
        q = np.percentile(v, [5, 50, 95]) if v.size else [np.nan] * 3
        rows.append({"metric": col, "n": int(v.size), "mean": float(v.mean()) if v.size else np.nan,
                     "p5": q[0], "p50": q[1], "p95": q[2]})
    return pd.DataFrame(rows, columns=["metric", "n", "mean", "p5", "p50", "p95"])


@dataclass
class Study:
    """Everything notebook 06 shows: the Monte Carlo at the main no-show rate, the no-show
    sweep (same samples, :mod:`evsched.uncertainty.deviations`: common random numbers), the
    plans and the nominal days (as reserved, on the forecast and on the actual day)."""

    model: DeviationModel
    main: MonteCarlo
    sweep: dict
    setups: dict
    nominal: pd.DataFrame
    n_samples_sweep: int
    timings: dict

    @property
    def rates(self) -> list[float]:
        return sorted(self.sweep)

    def sweep_samples(self) -> pd.DataFrame:
        return pd.concat([mc.samples.assign(no_show_prob=p) for p, mc in sorted(self.sweep.items())],
                         ignore_index=True)

    def sweep_summary(self) -> pd.DataFrame:
        return pd.concat([summarise(mc.samples).assign(no_show_prob=p) for p, mc in sorted(self.sweep.items())],
                         ignore_index=True)[["no_show_prob", "policy", "metric", "n", "mean", "p5", "p50", "p95"]]

    def sweep_paired(self) -> pd.DataFrame:
        return pd.concat([summarise_paired(mc.paired()).assign(no_show_prob=p)
                          for p, mc in sorted(self.sweep.items())],
                         ignore_index=True)[["no_show_prob", "metric", "n", "mean", "p5", "p50", "p95"]]

    def robust_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(margins, iterations)`` of the robust plan of every no-show rate."""
        margins, its = [], []
        for p, s in sorted(self.setups.items()):
            plan = s.plans.get("robust")
            if plan is None:
                continue
            info = plan.info
            buses = info["buses"]
            lo, hi = info["margin_low_pu"], info["margin_high_pu"]
            margins.append(pd.DataFrame({"no_show_prob": p, "bus": np.repeat(buses, lo.shape[1]),
                                         "hour": np.tile(np.arange(lo.shape[1]), len(buses)),
                                         "margin_low_pu": lo.ravel(), "margin_high_pu": hi.ravel()}))
            its.append(pd.DataFrame(info["history"]).assign(no_show_prob=p))
        return (pd.concat(margins, ignore_index=True) if margins else pd.DataFrame(),
                pd.concat(its, ignore_index=True) if its else pd.DataFrame())

    def write(self, out_dir, errors: ForecastErrors | None = None) -> dict:
        """Every table into ``out_dir`` (module docstring, plus ``no_show_sweep*.csv``,
        ``robust_*.csv``, ``nominal_days.csv``, ``deviation_model.csv``,
        ``backtest_residuals.csv``) and ``timings.json``; returns the paths."""
        out = Path(out_dir)
        paths = write_results(self.main, out)
        margins, its = self.robust_tables()
        tables = {"no_show_sweep": self.sweep_summary(), "no_show_sweep_paired": self.sweep_paired(),
                  "no_show_sweep_samples": self.sweep_samples(), "robust_margins": margins,
                  "robust_iterations": its, "nominal_days": self.nominal,
                  "deviation_model": self.model.table()}
        if errors is not None:
            tables["backtest_residuals"] = errors.residual_table()
        for name, df in tables.items():
            paths[name] = write_table(df, out / f"{name}.csv")
        paths["timings"] = out / "timings.json"
        paths["timings"].write_text(json.dumps(self.timings, indent=2, default=str))
        return paths


def run_study(cd, errors: ForecastErrors, model: DeviationModel, n_samples: int = 20,
              n_samples_sweep: int = 6, rates=(0.0, 0.1, 0.2, 0.3), reactive: bool = True,
              robust_level: float = 1.0, robust_scenarios: int = 60, n_workers: int = 1,
              solver: str | None = None, policies=POLICIES) -> Study:
    """Notebook 06 in one call: plans for every no-show rate (``rates`` ∪ the model's), the
    Monte Carlo (``n_samples`` at the model's rate, ``n_samples_sweep`` at the others; the
    sweep at the model's rate is its first ``n_samples_sweep`` samples), the nominal days;
    all on one :class:`Pool` of ``n_workers`` processes."""
    from evsched.uncertainty.deviations import nominal_sample
    t0 = time.perf_counter()
    main_p = model.no_show_prob
    all_rates = sorted({float(r) for r in rates} | {main_p})
    models = {p: model.with_(no_show_prob=p) for p in all_rates}
    n_sweep = min(n_samples_sweep, n_samples)
    indices = {p: range(n_samples if p == main_p else n_samples_sweep) for p in all_rates}
    timings = {}
    with Pool(n_workers) as pool:
        t1 = time.perf_counter()
        setups = prepare_many(cd, models, errors, reactive, policies, solver,
                              {"level": robust_level, "n_scenarios": robust_scenarios}, pool)
        timings["plans_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        mcs = run_many(setups, indices, pool=pool)
        timings["samples_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        days = [nominal_sample(cd, errors, "none", index=-1), nominal_sample(cd, errors, "actual", index=-2)]
        handle = pool.scatter(setups[main_p])
        nominal = pd.DataFrame([r for rows in pool.map(_evaluate_task, [(handle, d) for d in days]) for r in rows],
                               columns=SAMPLE_COLUMNS)
        timings["nominal_s"] = time.perf_counter() - t1
    sweep = {}
    for p in all_rates:
        mc = mcs[p]
        if p == main_p and n_sweep < n_samples:
            keep = mc.samples["sample"] < n_sweep
            mc = MonteCarlo(mc.samples[keep].reset_index(drop=True),
                            mc.failures[mc.failures["sample"] < n_sweep].reset_index(drop=True), mc.timings)
        if p in [float(r) for r in rates] or p == main_p:
            sweep[p] = mc
    timings.update({"total_s": time.perf_counter() - t0, "n_workers": n_workers,
                    "per_rate": {str(p): mcs[p].timings for p in all_rates}})
    return Study(models[main_p], mcs[main_p], sweep, setups, nominal, n_sweep, timings)
