"""Benchmark: the price of honouring every reservation (per-EV model vs the station envelope).

``python -m evsched.bench_ev`` (part of ``make bench``) builds the default case, then solves S2
and S3 with ``ev_model = "exact"`` (one storage per EV session, variables only where plugged
in) and ``"envelope"`` (the paper's station aggregate), ``REPEATS`` times each, and writes
``results/bench/ev_models.csv`` and ``.md``: build and solve time (median), solver time, loss,
reservations not honoured, and the loss of the envelope relative to the per-EV optimum.
"""
from __future__ import annotations

import platform
import resource
import time

import numpy as np
import pandas as pd

from evsched.paths import RESULTS

REPEATS = 5


def measure(repeats: int = REPEATS) -> pd.DataFrame:
    from evsched import scenarios
    from evsched.case import build_case, load_case
    from evsched.disaggregation import energy_not_delivered_kwh

    rows = []
    for ev_model in ("exact", "envelope"):
        cd = build_case(load_case(ev_model=ev_model))
        for name, reactive in (("S2", False), ("S3", True)):
            build, total, solver = [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                m = scenarios.opf_model(cd, reactive)
                t1 = time.perf_counter()
                res = m.solve()
                build.append(t1 - t0)
                total.append(time.perf_counter() - t0)
                solver.append(res.solver_seconds)
            check = scenarios.reservation_check(cd, res)
            rows.append({"scenario": name, "ev_model": ev_model, "storage_rows": m.groups["ev_stations"].n,
                         "build_s": round(float(np.median(build)), 4),
                         "solve_total_s": round(float(np.median(total)), 4),
                         "solver_s": round(float(np.median(solver)), 4),
                         "loss_kwh": round(res.loss_kwh, 3),
                         "reservations_not_honoured": int((~check["honoured"]).sum()),
                         "energy_not_delivered_kwh": round(energy_not_delivered_kwh(check), 3),
                         "max_relaxation_gap_rel": float(f"{res.max_relaxation_gap_rel:.2e}")})
    df = pd.DataFrame(rows)
    exact = df[df.ev_model == "exact"].set_index("scenario").loss_kwh
    df["loss_vs_per_ev_pct"] = [round(100 * (r.loss_kwh - exact[r.scenario]) / exact[r.scenario], 3)
                                for r in df.itertuples()]
    df["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return df


def main() -> None:
    out = RESULTS / "bench"
    out.mkdir(parents=True, exist_ok=True)
    df = measure()
    df.to_csv(out / "ev_models.csv", index=False)
    from evsched.bench import _markdown
    from evsched.parallel import default_workers
    machine = f"{platform.machine()}, {default_workers()} cores, Python {platform.python_version()}"
    md = f"# EV model benchmark ({time.strftime('%Y-%m-%d')}, {machine}, median of {REPEATS})\n\n{_markdown(df)}\n"
    (out / "ev_models.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
