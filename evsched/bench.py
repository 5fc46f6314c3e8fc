"""Benchmark: model build, compile, solve and re-solve on 33 … 1000-bus feeders, 24 and 96 steps.

``python -m evsched.bench`` (``make bench``) runs every case in its own subprocess (so peak
memory is per case), writes ``results/bench/bench.csv`` and ``results/bench/bench.md``.

A case = the IEEE 33-bus feeder replicated K times off the substation (K = 1, 10, 31 →
33, 321, 993 buses), T steps of a daily load shape, and inverters with controllable
reactive power (|q| ≤ sqrt(S² − p²)) at every eighth bus. Construction modes compared:

* ``constant``   — one-off solve: build with numpy constants, compile, solve;
* ``parametric`` — cvxpy DPP parameters: first solve compiles, re-solves skip it;
* ``rhs``        — compile once, re-solves rewrite only the conic right-hand side.

Re-solves draw new load values (±10 % random scaling per bus and step) each time.
"""
from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from evsched.paths import RESULTS

CASES = [  # (copies, steps, construction); "auto" = constant first, then parametric/rhs for re-solves
    (1, 24, "constant"), (1, 24, "parametric"), (1, 24, "rhs"), (1, 24, "auto"),
    (1, 96, "constant"), (1, 96, "parametric"), (1, 96, "rhs"),
    (10, 24, "constant"), (10, 24, "parametric"), (10, 24, "rhs"),
    (10, 96, "constant"), (10, 96, "rhs"),
    (31, 24, "constant"), (31, 24, "rhs"),
    (31, 96, "constant"), (31, 96, "auto"),
    # real feeders beside the synthetic copies (evsched.feeders: SimBench MV grids cut at the transformer)
    ("simbench:1-MV-rural--0-sw", 24, "constant"), ("simbench:1-MV-rural--0-sw", 24, "rhs"),
    ("simbench:1-MV-semiurb--0-sw", 24, "constant"), ("simbench:1-MV-semiurb--0-sw", 24, "rhs"),
    ("simbench:1-MV-rural--0-sw", 96, "rhs"),
]
RESOLVES = 5
CASE_TIMEOUT_S = 400


def daily_shape(T: int) -> np.ndarray:
    from evsched.profiles import synthetic_daily_shape
    return synthetic_daily_shape(T)


def _copies(arg: str):
    """A case's feeder from the command line: a number of IEEE-33 copies, or a ``network``
    value naming a real feeder (``simbench:<code>``)."""
    return arg if arg.startswith("simbench:") else int(arg)


def _buses(copies) -> int | str:
    """Bus count of an IEEE-33 case (K copies share the substation); a real feeder's name."""
    return copies if isinstance(copies, str) else 33 * copies - (copies - 1)


def run_case(copies, T: int, construction: str) -> dict:
    """Build, solve and re-solve one case in this process; return timings [s] and memory [MiB].

    ``copies``: K copies of the IEEE 33-bus feeder, or ``"simbench:<code>"`` (a real feeder of
    :mod:`evsched.feeders`, its SimBench reference loads × the same daily shape)."""
    import evsched
    from evsched.feeders import load_network
    from evsched.model import DeviceGroup, OPFModel

    net = load_network(copies) if isinstance(copies, str) else evsched.load_ieee33().replicate(copies)
    p, q = net.nominal_load()
    shape = daily_shape(T)
    P, Q = np.outer(p, shape), np.outer(q, shape)
    buses = net.bus_ids[1::8]
    n = len(buses)
    pv_p = -150.0 * np.outer(np.ones(n), np.clip(np.sin(np.pi * (np.arange(T) * 24 / T - 6) / 12), 0, None))
    inv = DeviceGroup("inverters", buses=buses, p_min_kw=pv_p, p_max_kw=pv_p,
                      q_min_kvar=-200.0, q_max_kvar=200.0, s_max_kva=200.0, kind="pv")
    t0 = time.perf_counter()
    m = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.90, dt_h=24 / T, construction=construction)
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = m.solve()
    first_total = time.perf_counter() - t1
    solver_s = res.solver_seconds
    compile_s = getattr(m.problem, "compilation_time", None) or max(first_total - solver_s, 0.0)
    rng = np.random.default_rng(0)
    re_times, re_solver = [], []
    for _ in range(RESOLVES):
        scale = rng.uniform(0.9, 1.1, size=P.shape)
        t2 = time.perf_counter()
        m.update(load_p_kw=P * scale, load_q_kvar=Q * scale)
        r2 = m.solve()
        re_times.append(time.perf_counter() - t2)
        re_solver.append(r2.solver_seconds)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "network": net.name, "buses": net.n_bus, "steps": T, "bus_steps": net.n_bus * T,
        "construction": construction,
        "build_s": round(build, 4), "compile_s": round(compile_s, 4), "solver_s": round(solver_s, 4),
        "first_solve_total_s": round(build + first_total, 4),
        "build_share_of_solver": round((build + compile_s) / solver_s, 3) if solver_s else None,
        "resolve_mean_s": round(float(np.mean(re_times)), 4),
        "resolve_solver_mean_s": round(float(np.mean(re_solver)), 4),
        "construction_after_update": m.construction,
        "peak_memory_mib": round(peak_mib, 1), "solver": res.solver, "status": res.status,
        "max_relaxation_gap_rel": float(f"{res.max_relaxation_gap_rel:.2e}"),
        "loss_kwh": round(res.loss_kwh, 3),
    }


def main() -> None:
    if len(sys.argv) == 4:  # child process: one case
        print(json.dumps(run_case(_copies(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
        return
    out = RESULTS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (copies, T, mode) in enumerate(CASES, 1):
        print(f"[{k}/{len(CASES)}] {_buses(copies)} buses × {T} steps, {mode} ...", end=" ", flush=True)
        try:
            proc = subprocess.run([sys.executable, "-m", "evsched.bench", str(copies), str(T), mode],
                                  capture_output=True, text=True, timeout=CASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"timed out after {CASE_TIMEOUT_S} s", flush=True)
            rows.append({"buses": _buses(copies), "steps": T, "construction": mode,
                         "status": f"timeout > {CASE_TIMEOUT_S} s"})
            continue
        if proc.returncode != 0:
            print("FAILED\n" + proc.stderr[-2000:], flush=True)
            rows.append({"buses": _buses(copies), "steps": T, "construction": mode, "status": "failed"})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"first {row['first_solve_total_s']:.2f} s, re-solve {row['resolve_mean_s']:.3f} s, "
              f"{row['peak_memory_mib']:.0f} MiB", flush=True)
    df = pd.DataFrame(rows)
    machine = f"{platform.machine()}, {_cpu_count()} cores, Python {platform.python_version()}"
    df.to_csv(out / "bench.csv", index=False)
    cols = ["network", "buses", "steps", "construction", "build_s", "compile_s", "solver_s", "first_solve_total_s",
            "build_share_of_solver", "resolve_mean_s", "peak_memory_mib", "max_relaxation_gap_rel"]
    md = [f"# evsched benchmark ({time.strftime('%Y-%m-%d')}, {machine}, solver {df.solver.dropna().iloc[0] if 'solver' in df else '?'})",
          "", _markdown(df[[c for c in cols if c in df]]), ""]
    (out / "bench.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"written: {out / 'bench.csv'}, {out / 'bench.md'}")


def _cpu_count() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


if __name__ == "__main__":
    main()
