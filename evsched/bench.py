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

DPP parameters (``parametric``) are the trap this benchmark documents: their compilation time
and memory grow much faster than the problem (15.3 GiB at 321 × 24 on 2026-11-26). They are
therefore measured only up to 97 × 24 buses × steps, each in a child limited to
:data:`DPP_MEMORY_LIMIT_MIB` of address space, and extrapolated to the larger sizes with a
power law in buses × steps (:func:`dpp_extrapolation`, table "DPP compilation trap").

``python -m evsched.bench --sweep [SPEC]`` (also run by ``make bench``) times a sweep
(:func:`sweep_benchmark`: ``params/sweeps/year_small.yaml`` in this process, on 1 and on 2 dask
workers): wall time, cases/s, speed-up, task CPU time, peak memory of the process tree (driver +
workers, kept under 4 GiB), and that the three ``cases.csv`` are byte-identical →
``results/bench/sweep.csv``, ``sweep.md``. ``--dpp`` runs only the DPP rows.

``python -m evsched.bench --sweep params/sweeps/year.yaml --workers 1,2`` (``make bench-year``,
about 15 minutes on 2 cores) times the full year the same way → ``sweep_year.csv``, ``.md``.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from evsched.parallel import default_workers
from evsched.paths import RESULTS

CASES = [  # (copies, steps, construction); "auto" = constant first, then parametric/rhs for re-solves
    (1, 24, "constant"), (1, 24, "parametric"), (1, 24, "rhs"), (1, 24, "auto"),
    (1, 48, "parametric"), (2, 24, "parametric"), (3, 24, "parametric"),  # the DPP trap, measured small
    (1, 96, "constant"), (1, 96, "rhs"),
    (10, 24, "constant"), (10, 24, "rhs"),
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
DPP_TARGETS = [(1, 96), (10, 24)]
"""Sizes where ``parametric`` is extrapolated, not run (2.7 and 15.3 GiB when last run)."""
DPP_MEMORY_LIMIT_MIB = 4096
"""Address-space limit of a ``parametric`` child process (its resident memory stays below)."""
SWEEP_SPEC = "year_small.yaml"
"""The sweep timed by :func:`sweep_benchmark` (in ``params/sweeps/``)."""


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
        if sys.argv[3] == "parametric":  # never let the DPP trap take the machine's memory
            lim = DPP_MEMORY_LIMIT_MIB * 1024 ** 2
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        print(json.dumps(run_case(_copies(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
        return
    out = RESULTS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) >= 2 and sys.argv[1] == "--sweep":
        args = sys.argv[2:]
        workers = (0, 1, 2)
        if "--workers" in args:
            i = args.index("--workers")
            workers = tuple(int(w) for w in args[i + 1].split(","))
            del args[i:i + 2]
        sweep_benchmark(args[0] if args else None, workers=workers, out=out)
        return
    cases = CASES
    if len(sys.argv) == 2 and sys.argv[1] == "--dpp":
        cases = [c for c in CASES if c[2] == "parametric" or c[:2] == (1, 24) and c[2] == "constant"]
    rows = []
    for k, (copies, T, mode) in enumerate(cases, 1):
        print(f"[{k}/{len(cases)}] {_buses(copies)} buses × {T} steps, {mode} ...", end=" ", flush=True)
        try:
            proc = subprocess.run([sys.executable, "-m", "evsched.bench", str(copies), str(T), mode],
                                  check=False, capture_output=True, text=True, timeout=CASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"timed out after {CASE_TIMEOUT_S} s", flush=True)
            rows.append({"buses": _buses(copies), "steps": T, "construction": mode,
                         "status": f"timeout > {CASE_TIMEOUT_S} s"})
            continue
        if proc.returncode != 0:
            print("FAILED\n" + proc.stderr[-2000:], flush=True)
            over = mode == "parametric" and "MemoryError" in proc.stderr
            rows.append({"buses": _buses(copies), "steps": T, "construction": mode,
                         "status": f"over {DPP_MEMORY_LIMIT_MIB} MiB" if over else "failed"})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"first {row['first_solve_total_s']:.2f} s, re-solve {row['resolve_mean_s']:.3f} s, "
              f"{row['peak_memory_mib']:.0f} MiB", flush=True)
    df = pd.DataFrame(rows)
    machine = f"{platform.machine()}, {default_workers()} cores, Python {platform.python_version()}"
    if cases is not CASES:  # --dpp: the DPP rows only, beside (not over) the full benchmark
        dpp = dpp_extrapolation(df)
        df.to_csv(out / "bench_dpp_runs.csv", index=False)
        if dpp is not None:
            dpp.to_csv(out / "bench_dpp.csv", index=False)
            print(f"\n{_markdown(dpp)}\n\n{dpp.attrs['fit']}\nwritten: {out / 'bench_dpp.csv'}")
        return
    df.to_csv(out / "bench.csv", index=False)
    cols = ["network", "buses", "steps", "construction", "build_s", "compile_s", "solver_s", "first_solve_total_s",
            "build_share_of_solver", "resolve_mean_s", "peak_memory_mib", "max_relaxation_gap_rel"]
    md = [f"# evsched benchmark ({time.strftime('%Y-%m-%d')}, {machine}, solver {df.solver.dropna().iloc[0] if 'solver' in df else '?'})",
          "", _markdown(df[[c for c in cols if c in df]]), ""]
    dpp = dpp_extrapolation(df)
    if dpp is not None:
        dpp.to_csv(out / "bench_dpp.csv", index=False)
        md += ["## DPP compilation trap (parametric): measured small, extrapolated large", "",
               _markdown(dpp), "", dpp.attrs["fit"], ""]
    (out / "bench.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"written: {out / 'bench.csv'}, {out / 'bench.md'}")
    if cases is CASES:
        sweep_benchmark(out=out)


def dpp_extrapolation(df: pd.DataFrame) -> pd.DataFrame | None:
    """Power-law fits ``y = a · (buses × steps)^b`` of the measured ``parametric`` rows (compile
    time; peak memory above the smallest ``constant`` case's, i.e. what the compilation adds),
    evaluated at the measured sizes and at :data:`DPP_TARGETS`. None with fewer than 3 rows."""
    ok = df[(df.construction == "parametric") & df.get("compile_s", pd.Series(dtype=float)).notna()]
    if len(ok) < 3:
        return None
    base = float(df.loc[df.construction == "constant", "peak_memory_mib"].min())
    x = np.log(ok.bus_steps.astype(float))
    b_c, a_c = np.polyfit(x, np.log(ok.compile_s.astype(float)), 1)
    b_m, a_m = np.polyfit(x, np.log(np.maximum(ok.peak_memory_mib.astype(float) - base, 1.0)), 1)
    rows = [{"buses": int(r.buses), "steps": int(r.steps), "bus_steps": int(r.bus_steps),
             "how": "measured", "compile_s": r.compile_s, "peak_memory_mib": r.peak_memory_mib}
            for r in ok.itertuples()]
    for copies, T in DPP_TARGETS:
        n = 33 * copies - (copies - 1)
        xs = np.log(n * T)
        rows.append({"buses": n, "steps": T, "bus_steps": n * T, "how": "extrapolated",
                     "compile_s": round(float(np.exp(a_c + b_c * xs)), 1),
                     "peak_memory_mib": round(float(base + np.exp(a_m + b_m * xs)))})
    out = pd.DataFrame(rows)
    out.attrs["fit"] = (f"Fit over {len(ok)} measured sizes: compile time ∝ (buses × steps)^{b_c:.2f}, "
                        f"memory above the {base:.0f} MiB baseline ∝ (buses × steps)^{b_m:.2f}; "
                        "the rhs construction compiles once in time and memory close to a one-off "
                        "solve (table above).")
    return out


class _TreeMemory:
    """Peak resident memory [MiB] of this process and all its descendants (sampled)."""

    def __init__(self, every_s: float = 0.2):
        import threading
        self.every_s, self.peak = every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / 1024 ** 2)
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def sweep_benchmark(spec=None, workers=(0, 1, 2), out=None) -> pd.DataFrame:
    """Time one sweep spec (default ``params/sweeps/year_small.yaml``) in this process
    (``workers=0``) and on LocalClusters of 1 and 2 single-threaded workers.

    Per run: cases, wall time, cases/s, speed-up over 1 worker, the tasks' CPU time (from
    ``timings.csv``: on a loaded machine wall time exceeds it), the peak resident memory of the
    whole process tree, and whether ``cases.csv`` is byte-identical to the in-process table.
    Writes ``sweep.csv`` and ``sweep.md`` (``sweep_<spec>.csv``/``.md`` for another spec than
    the default) into ``out`` (when given)."""
    import hashlib
    import tempfile
    from pathlib import Path

    from evsched.paths import PARAMS
    from evsched.sweep import load_spec, run_sweep

    spec = Path(spec) if spec else PARAMS / "sweeps" / SWEEP_SPEC
    sw = load_spec(spec)
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows, ref = [], None
    for w in workers:
        with tempfile.TemporaryDirectory() as d:
            print(f"sweep {sw.name}: {len(sw.cases)} cases, workers={w} ...", end=" ", flush=True)
            t0 = time.perf_counter()
            with _TreeMemory() as mem:
                run_sweep(sw, Path(d) / "out", workers=w, progress=False, log=lambda m: None)
            wall = time.perf_counter() - t0
            table = (Path(d) / "out" / "cases.csv").read_bytes()
            ref = ref or table
            t = pd.read_csv(Path(d) / "out" / "timings.csv")
            rows.append({"spec": spec.name, "cases": len(sw.cases), "scenarios": len(sw.scenarios),
                         "mode": "in-process" if w == 0 else f"{w} worker(s)", "wall_s": round(wall, 1),
                         "cases_per_s": round(len(sw.cases) / wall, 3),
                         "task_cpu_s": round(float(t.cpu_s.sum()), 1),
                         "peak_memory_mib": round(mem.peak), "table_sha256": hashlib.sha256(table).hexdigest()[:12],
                         "identical_table": table == ref})
            print(f"{wall:.1f} s, {rows[-1]['peak_memory_mib']} MiB", flush=True)
    df = pd.DataFrame(rows)
    one = df.loc[df["mode"] == "1 worker(s)", "wall_s"]
    df["speedup_vs_1_worker"] = (float(one.iloc[0]) / df.wall_s).round(2) if len(one) else np.nan
    if out is not None:
        machine = f"{platform.machine()}, {default_workers()} cores, Python {platform.python_version()}"
        stem = "sweep" if spec.name == SWEEP_SPEC else f"sweep_{spec.stem}"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        df.to_csv(Path(out) / f"{stem}.csv", index=False)
        (Path(out) / f"{stem}.md").write_text(
            f"# evsched sweep benchmark ({time.strftime('%Y-%m-%d')}, {machine}; "
            f"load average {load0:.1f} at start, {load:.1f} at end)\n\n{_markdown(df)}\n")
        print(f"written: {Path(out) / f'{stem}.csv'}, {Path(out) / f'{stem}.md'}")
    return df


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


if __name__ == "__main__":
    main()
