"""Benchmark of the uncertainty study (kept out of every results table).

``python -m evsched.uncertainty.bench [--samples 200] [--workers 2] [--no-per-ev]`` writes
``results/bench/uncertainty.json`` and ``uncertainty.md``:

* **one MPC day** — 24 hourly re-solves of the station-envelope MPC on the 33-bus default case
  (compiled models reused, ``construction="rhs"``), wall time per day and per re-solve, over a
  few samples; the compile of the 24 horizon models is reported separately (once per process);
* **a per-EV MPC day** — the same 24 shrinking horizons solved with one storage per EV session
  (what the envelope avoids), to justify the choice; and one call of
  :func:`evsched.disaggregation.disaggregate` (what splitting each hour with it would cost);
* **hindsight** — CPU per sample with a fresh exact-pattern model vs one compiled superset model;
* **N samples × 4 policies** — :func:`evsched.uncertainty.montecarlo.run` on ``n_workers``
  processes (dask.distributed), wall time including each worker's model compile, plus the
  sample-independent preparation (day-ahead and robust plans) separately.

Targets (issue "Beyond the paper"): one MPC day ≤ 2 s; 200 samples × 4 policies ≤ 5 min on
the project's 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from evsched.paths import RESULTS


def _case():
    from evsched.case import build_case, load_case
    from evsched.paths import PARAMS
    from evsched.uncertainty.deviations import forecast_errors
    cd = build_case(load_case(PARAMS / "default.yaml"))
    return cd, forecast_errors(cd)


def mpc_day(cd, errors, n_days: int = 5) -> dict:
    """Compile the station-envelope MPC, then time ``n_days`` sampled days (24 re-solves each)."""
    from evsched.uncertainty.deviations import DeviationModel, draw_sample
    from evsched.uncertainty.policies import MPC
    model = DeviationModel()
    t0 = time.perf_counter()
    mpc = MPC(cd, model, errors)
    compile_s = time.perf_counter() - t0
    days, cpu = [], []
    for i in range(n_days):
        s = draw_sample(model, cd.reservations, errors, i)
        t0, c0 = time.perf_counter(), time.process_time()
        mpc.run(s)
        days.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # what splitting each hour with evsched.disaggregation.disaggregate (an LP over every session
    # and the whole horizon, rebuilt at each call) would cost instead of MPC.split: one call
    from evsched.aggregation import station_incidence
    from evsched.disaggregation import disaggregate
    from evsched.uncertainty.policies import day_ahead_plan
    da = day_ahead_plan(cd)
    ses = cd.sessions
    first = ses.kind != "morning"
    ri = ses.res_index
    net = np.where(first[:, None], da.ev_charge_kw[ri, :24] - da.ev_discharge_kw[ri, :24],
                   da.ev_charge_kw[ri, 24:] - da.ev_discharge_kw[ri, 24:])
    st = cd.stations.stations
    t0 = time.perf_counter()
    disaggregate(ses, station_incidence(ses, st) @ net, st, priority="evs")
    dis_s = time.perf_counter() - t0
    return {"compile_24_models_s": compile_s, "day_s_mean": float(np.mean(days)), "day_s_max": float(np.max(days)),
            "day_cpu_s_mean": float(np.mean(cpu)), "resolve_s_mean": float(np.mean(days)) / 24, "days": n_days,
            "disaggregate_call_s": dis_s}


def per_ev_mpc_day(cd) -> dict:
    """24 shrinking-horizon solves of the per-EV model (one storage per session) on the day as
    reserved and forecast, each EV starting from its day-ahead planned energy at hour t."""
    import dataclasses

    from evsched.uncertainty.policies import (
        _opf,
        day_ahead_plan,
        ev_group,
        reachable,
        renewables,
    )
    da = day_ahead_plan(cd)
    ses = cd.sessions
    first = ses.kind != "morning"
    ri = ses.res_index
    pc = np.where(first[:, None], da.ev_charge_kw[ri, :24], da.ev_charge_kw[ri, 24:])
    pd_ = np.where(first[:, None], da.ev_discharge_kw[ri, :24], da.ev_discharge_kw[ri, 24:])
    x_cum = np.cumsum(ses.eta[:, None] * pc - pd_ / ses.eta[:, None], axis=1)
    rc = ses.eta * np.where(ses.mode != "discharge", ses.charger_kw, 0.0)
    rd = np.where(ses.mode != "charge", ses.charger_kw, 0.0) / ses.eta
    times, c0 = [], time.process_time()
    for t in range(24):
        x_now = x_cum[:, t - 1] if t else np.zeros(ses.n)
        f = ses.presence[:, t:]
        keep = f.sum(axis=1) > 0
        lo, hi = reachable(f[keep], x_now[keep], ses.soc_box_min_kwh[keep], ses.soc_box_max_kwh[keep],
                           ses.target_min_kwh[keep], ses.target_max_kwh[keep], rc[keep], rd[keep])
        sub = dataclasses.replace(
            ses, **{k: getattr(ses, k)[keep] for k in ("ev_id", "res_index", "station", "bus", "mode", "kind",
                                                       "soc_box_min_kwh", "soc_box_max_kwh", "target_min_kwh",
                                                       "target_max_kwh", "e0_kwh", "eta", "charger_kw")},
            presence=f[keep], p_charge_max_kw=ses.p_charge_max_kw[keep, t:],
            p_discharge_max_kw=ses.p_discharge_max_kw[keep, t:], s_max_kva=ses.s_max_kva[keep, t:],
            energy_min_kwh=lo, energy_max_kwh=hi)
        hours = np.arange(t, 24)
        t0 = time.perf_counter()
        m = _opf(cd, cd.load_p_kw[:, t:], cd.load_q_kvar[:, t:],
                 renewables(cd, cd.pv_avail_kw[:, t:], cd.wt_avail_kw[:, t:], True, hours) + [ev_group(sub, True)],
                 hours=hours, construction="constant")
        m.solve(on_inexact="mark")
        times.append(time.perf_counter() - t0)
    return {"day_s": float(np.sum(times)), "day_cpu_s": time.process_time() - c0, "resolve_s_mean": float(np.mean(times)),
            "resolve_s_first": float(times[0]), "sessions": int(ses.n)}


def hindsight_patterns(cd, errors, n: int = 3) -> dict:
    """CPU per hindsight solve [s]: a fresh model with the sample's exact pattern vs one compiled
    model with the superset pattern updated per sample (mean over ``n`` samples)."""
    from evsched.uncertainty.deviations import DeviationModel, draw_sample
    from evsched.uncertainty.policies import Hindsight
    model = DeviationModel()
    out = {}
    for pattern in ("exact", "superset"):
        c0 = time.process_time()
        h = Hindsight(cd, errors, model.arrival_delays_h.max(), model.max_late_departure_h, pattern=pattern)
        build = time.process_time() - c0
        cpu = []
        for i in range(n):
            s = draw_sample(model, cd.reservations, errors, i)
            c0 = time.process_time()
            h.run(s)
            cpu.append(time.process_time() - c0)
        out[pattern] = {"setup_cpu_s": build, "solve_cpu_s_mean": float(np.mean(cpu))}
    return out


def monte_carlo(cd, errors, n_samples: int = 200, n_workers: int = 2) -> dict:
    """Prepare (day-ahead + robust plans) and run ``n_samples`` × 4 policies."""
    from evsched.uncertainty import montecarlo as mc
    from evsched.uncertainty.deviations import DeviationModel
    model = DeviationModel()
    t0 = time.perf_counter()
    setup = mc.prepare(cd, model, errors)
    prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = mc.run(setup, range(n_samples), n_workers=n_workers)
    wall = time.perf_counter() - t0
    s = res.samples
    engines = [json.loads(e) for e in res.timings["engines"]]
    build_cpu = sum({e["pid"]: e["engine_build_cpu_s"] for e in engines}.values())
    cpu = res.timings["cpu_s"] + build_cpu
    return {"n_samples": n_samples, "n_workers": n_workers, "prepare_s": prep, "run_s": wall,
            "total_s": prep + wall, "per_sample_policy_s": res.timings["per_sample_s"],
            "per_sample_policy_cpu_s": res.timings["per_sample_cpu_s"], "run_cpu_s": cpu,
            "run_s_if_idle": cpu / n_workers, "engines": res.timings["engines"],
            "hindsight_infeasible": int((s.query("policy == 'hindsight'")["status"] == "infeasible").sum())}


def run_benchmark(out_dir=None, n_samples: int = 200, n_workers: int = 2, per_ev: bool = True) -> dict:
    """Run the three measurements; write ``uncertainty.json`` and ``uncertainty.md`` into
    ``out_dir`` (default ``results/bench/``); returns the numbers."""
    import os
    out = Path(out_dir) if out_dir is not None else RESULTS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cd, errors = _case()
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_start": list(os.getloadavg()), "case_s": time.perf_counter() - t0,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    info["mpc_day"] = mpc_day(cd, errors)
    info["hindsight_patterns"] = hindsight_patterns(cd, errors)
    if per_ev:
        info["per_ev_mpc_day"] = per_ev_mpc_day(cd)
    info["monte_carlo"] = monte_carlo(cd, errors, n_samples, n_workers)
    info["load_average_end"] = list(os.getloadavg())
    (out / "uncertainty.json").write_text(json.dumps(info, indent=2))
    (out / "uncertainty.md").write_text(markdown(info))
    return info


def markdown(info: dict) -> str:
    m, mc = info["mpc_day"], info["monte_carlo"]
    lines = ["# Uncertainty study benchmark", "",
             (f"{info['machine']}, {info['cpus']} CPUs, Python {info['python']}, {info['when']}; load average "
              f"{info['load_average_start'][0]:.1f} at start, {info['load_average_end'][0]:.1f} at end "
              "(a shared machine: other jobs share the cores)."), "",
             "| measurement | value | target |", "|---|---|---|",
             (f"| MPC day, station envelope (24 re-solves), mean of {m['days']} | {m['day_s_mean']:.2f} s "
              f"(max {m['day_s_max']:.2f} s; {1000 * m['resolve_s_mean']:.0f} ms per re-solve; CPU "
              f"{m['day_cpu_s_mean']:.2f} s) | ≤ 2 s |"),
             f"| compile of the 24 horizon models (once per process) | {m['compile_24_models_s']:.1f} s | |",
             (f"| one call of disaggregation.disaggregate(priority='evs') on the day (what splitting every hour "
              f"with it would cost, × 24) | {m['disaggregate_call_s']:.2f} s | |")]
    if "hindsight_patterns" in info:
        h = info["hindsight_patterns"]
        lines.append(f"| hindsight per sample, CPU: fresh model with the exact pattern (default) | "
                     f"{h['exact']['solve_cpu_s_mean']:.2f} s | |")
        lines.append(f"| hindsight per sample, CPU: one compiled model, superset pattern, data updates | "
                     f"{h['superset']['solve_cpu_s_mean']:.2f} s (+ {h['superset']['setup_cpu_s']:.1f} s once) | |")
    if "per_ev_mpc_day" in info:
        p = info["per_ev_mpc_day"]
        lines.append(f"| MPC day with one storage per EV ({p['sessions']} sessions, 24 solves) | {p['day_s']:.1f} s "
                     f"({p['resolve_s_mean']:.2f} s per solve, first {p['resolve_s_first']:.2f} s; CPU "
                     f"{p['day_cpu_s']:.1f} s) | ≤ 2 s |")
    lines += [(f"| {mc['n_samples']} samples × 4 policies on {mc['n_workers']} workers (incl. their compiles) "
               f"| {mc['run_s']:.0f} s wall; {mc['run_cpu_s']:.0f} CPU-s in the workers, i.e. "
               f"{mc['run_s_if_idle']:.0f} s on {mc['n_workers']} idle cores | ≤ 300 s |"),
              f"| preparation: day-ahead + robust plans (once) | {mc['prepare_s']:.1f} s | |",
              ("| per sample and policy, wall [s] | " + ", ".join(f"{k} {v:.2f}" for k, v in mc["per_sample_policy_s"].items())
               + " | |"),
              ("| per sample and policy, CPU [s] | "
               + ", ".join(f"{k} {v:.2f}" for k, v in mc["per_sample_policy_cpu_s"].items()) + " | |"), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m evsched.uncertainty.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-per-ev", action="store_true", help="skip the per-EV MPC day (≈ 15-30 s)")
    ap.add_argument("--out", default=None, help="output folder (default results/bench/)")
    a = ap.parse_args(argv)
    info = run_benchmark(a.out, a.samples, a.workers, not a.no_per_ev)
    print(markdown(info))


if __name__ == "__main__":
    main()
