"""The results contract: tables every scenario run writes, and the comparison with the paper.

Files written under ``results_dir`` (other tools read these; the column lists below are the
contract and are tested):

* ``summary.csv`` — one row per scenario, :data:`SUMMARY_COLUMNS`;
* ``timings.json`` — solver and wall time of each scenario's solve (not a results table:
  it changes from run to run);
* ``comparison.csv`` — :data:`COMPARISON_COLUMNS`: the five improvements the paper reports
  (S2 vs S1: peak-valley, loss, Γ; S3 vs S2: loss, Γ) plus S3 vs S2 peak-valley and the three
  metrics for S3 vs S0 and S3 vs S1 (``paper_pct`` empty where the paper gives no figure);
* ``scenarios/<S>/dispatch.csv`` (``hour, bus, device, p_kw, q_kvar``),
  ``scenarios/<S>/voltages.csv`` (``hour, bus, v_pu``),
  ``scenarios/<S>/branches.csv`` (``hour, from_bus, to_bus, p_kw, q_kvar, loss_kw, loading_pct``).

``hour`` is the start of the step in hours: 0, 1, ..., 23 at ``resolution_min: 60`` and
0, 0.25, ..., 23.75 at 15 (the same files, four times the rows); powers are step averages and
every energy in ``summary.csv`` is Σ · Δt (kWh; Γ in p.u.·h).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evsched import metrics
from evsched.errors import InputError
from evsched.frames import FlowFrames

SUMMARY_COLUMNS = ["scenario", "peak_valley_kw", "peak_valley_substation_kw", "loss_kwh",
                   "voltage_deviation_pu", "vmin_pu", "vmax_pu", "max_loading_pct", "max_relaxation_gap",
                   "max_relaxation_gap_rel", "ac_loss_kwh", "ac_max_voltage_mismatch_pu", "exact",
                   "reservations_not_honoured", "energy_not_delivered_kwh", "curtailment_kwh", "solver"]
"""Columns of ``summary.csv``. ``peak_valley_kw`` is on the equivalent load (the paper's
definition, losses excluded), ``peak_valley_substation_kw`` on the power drawn at the
substation (losses included). ``max_loading_pct`` is the largest line current over its
rating ``rating_a`` [%] (NaN when no line is rated). No timings: they change from run to run and go to
``timings.json``, so every results table of a rerun is byte-identical."""
COMPARISON_COLUMNS = ["metric", "comparison", "paper_pct", "ours_pct"]
DISPATCH_COLUMNS = ["hour", "bus", "device", "p_kw", "q_kvar"]
VOLTAGE_COLUMNS = ["hour", "bus", "v_pu"]
BRANCH_COLUMNS = ["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw", "loading_pct"]
"""Columns of ``branches.csv``; ``loading_pct`` = current / rating [%] (SOCP: √ℓ·I_base; S0/S1:
pandapower's ``loading_percent``), empty for an unrated line."""

METRICS = {"peak_valley": "peak_valley_kw", "loss": "loss_kwh", "voltage_deviation": "voltage_deviation_pu"}
"""Comparison metric name → summary column."""

PAPER_PCT = {
    ("peak_valley", "S2 vs S1"): -40.60,
    ("loss", "S2 vs S1"): -85.19,
    ("voltage_deviation", "S2 vs S1"): -70.74,
    ("loss", "S3 vs S2"): -57.00,
    ("voltage_deviation", "S3 vs S2"): -6.86,
}
"""The five percent changes the paper reports (Cao et al., Zhejiang Electric Power 2024)."""

COMPARISONS = ("S2 vs S1", "S3 vs S2", "S3 vs S0", "S3 vs S1")


def summary_table(results: dict) -> pd.DataFrame:
    """``summary.csv`` rows from ``{name: ScenarioResult}`` (columns :data:`SUMMARY_COLUMNS`)."""
    return pd.DataFrame([r.summary() for r in results.values()])[SUMMARY_COLUMNS]


def comparison_table(summary: pd.DataFrame, comparisons=COMPARISONS) -> pd.DataFrame:
    """Percent changes ``100·(new − ref)/ref`` per metric and comparison, next to the paper's.

    ``comparison`` reads "<new> vs <ref>"; comparisons whose scenarios are missing from
    ``summary`` are skipped.
    """
    s = summary.set_index("scenario")
    rows = []
    for comp in comparisons:
        new, ref = comp.split(" vs ")
        if new not in s.index or ref not in s.index:
            continue
        for metric, col in METRICS.items():
            rows.append({"metric": metric, "comparison": comp,
                         "paper_pct": PAPER_PCT.get((metric, comp), np.nan),
                         "ours_pct": metrics.pct_change(float(s.at[new, col]), float(s.at[ref, col]))})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def write_results(results: dict, results_dir, case=None) -> dict[str, Path]:
    """Write the results contract for ``{name: ScenarioResult}`` into ``results_dir``.

    With ``case`` (the :class:`evsched.case.Case` the results were computed for), its
    parameters go to ``scenarios/case.json`` so that a reader (notebook 05) can check it reads
    results of the same case. Returns the paths written (``summary``, ``comparison``,
    ``timings``, ``case`` and ``<S>/<table>``).
    """
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if case is not None:
        (out / "scenarios").mkdir(parents=True, exist_ok=True)
        paths["case"] = out / "scenarios" / "case.json"
        paths["case"].write_text(case_fingerprint(case))
    summary = summary_table(results)
    paths["summary"] = out / "summary.csv"
    summary.to_csv(paths["summary"], index=False)
    paths["comparison"] = out / "comparison.csv"
    comparison_table(summary).to_csv(paths["comparison"], index=False)
    paths["timings"] = out / "timings.json"
    paths["timings"].write_text(json.dumps(
        {name: {"solver": r.solver, "solve_seconds": round(float(r.solve_seconds), 4)}
         for name, r in results.items()}, indent=2))
    for name, r in results.items():
        d = out / "scenarios" / name
        d.mkdir(parents=True, exist_ok=True)
        for table, frame, cols in (("dispatch", r.dispatch, DISPATCH_COLUMNS),
                                   ("voltages", r.voltages, VOLTAGE_COLUMNS),
                                   ("branches", r.branches, BRANCH_COLUMNS)):
            p = d / f"{table}.csv"
            frame[cols].sort_values(cols[:3] if table != "dispatch" else ["hour", "bus", "device"]) \
                .to_csv(p, index=False, float_format="%.6g")
            paths[f"{name}/{table}"] = p
    return paths


def case_fingerprint(case) -> str:
    """The case's parameters as canonical JSON (sorted keys)."""
    return json.dumps(case.model_dump(mode="json"), sort_keys=True, indent=1)


@dataclass
class StoredScenario(FlowFrames):
    """A scenario read back from ``results/scenarios/<S>/`` (what the figures need)."""

    name: str
    dispatch: pd.DataFrame
    voltages: pd.DataFrame
    branches: pd.DataFrame
    dt_h: float = 1.0

    def equivalent_load(self) -> pd.Series:
        return metrics.equivalent_load(self.dispatch)


def read_scenarios(results_dir, case=None) -> dict[str, StoredScenario]:
    """The scenarios that notebook 04 wrote into ``results_dir``, as :class:`StoredScenario`.

    With ``case``, refuses results computed for other parameters (``scenarios/case.json``), so a
    figure never shows another run's numbers. The step length is read from the hour column.
    """
    out = Path(results_dir)
    folder = out / "scenarios"
    if not (out / "summary.csv").exists() or not folder.is_dir():
        raise InputError(f"{folder}: no scenario results here; run notebook 04 (or `make run`) first")
    if case is not None:
        stored = folder / "case.json"
        if not stored.exists() or stored.read_text() != case_fingerprint(case):
            raise InputError(f"{folder}: these results were computed for other parameters than this "
                             "notebook's; run notebook 04 with the same parameters first")
    names = pd.read_csv(out / "summary.csv")["scenario"].tolist()
    res = {}
    for name in names:
        d = folder / name
        frames = {t: pd.read_csv(d / f"{t}.csv") for t in ("dispatch", "voltages", "branches")}
        dt = metrics.step_length_h(frames["voltages"]["hour"])
        res[name] = StoredScenario(name, frames["dispatch"], frames["voltages"], frames["branches"], dt)
    return res


def compare_runs(run_a, run_b, labels=("60 min", "15 min")) -> str:
    """Markdown table of two complete runs of the same case at different time steps (e.g.
    ``results/`` and ``results/15min/``): per scenario, peak-valley, substation peak-valley,
    loss, Γ, V min and the solve time (``timings.json``) of each run with the change in %, the
    verdicts; the paper's five comparisons in both runs; the notebook times (``run_info.json``)
    of the notebooks both runs executed."""
    runs = [Path(run_a), Path(run_b)]
    s = [pd.read_csv(r / "summary.csv").set_index("scenario") for r in runs]
    t = [json.loads((r / "timings.json").read_text()) for r in runs]
    cols = [("peak_valley_kw", "peak-valley [kW]", "{:.0f}"),
            ("peak_valley_substation_kw", "at the substation [kW]", "{:.0f}"),
            ("loss_kwh", "loss [kWh]", "{:.1f}"), ("voltage_deviation_pu", "Γ [p.u.·h]", "{:.3f}"),
            ("vmin_pu", "V min [p.u.]", "{:.4f}")]
    head = " → ".join(labels)
    lines = ["| scenario | " + " | ".join(f"{title}: {head}" for _, title, _ in cols)
             + f" | solve [s]: {head} | exact, not honoured |",
             "|---" * (len(cols) + 3) + "|"]
    for name in s[0].index.intersection(s[1].index):
        a, b = s[0].loc[name], s[1].loc[name]
        cells = [f"{fmt.format(a[c])} → {fmt.format(b[c])} ({metrics.pct_change(float(b[c]), float(a[c])):+.1f} %)"
                 for c, _, fmt in cols]
        ta, tb = (float(x[name]["solve_seconds"]) for x in t)
        verdict = ", ".join(f"{'yes' if r['exact'] else 'NO'}/{'–' if pd.isna(r['reservations_not_honoured']) else int(r['reservations_not_honoured'])}"
                            for r in (a, b))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ta:.2f} → {tb:.2f} ({tb / ta:.1f}×) | {verdict} |")
    c = [pd.read_csv(r / "comparison.csv").set_index(["metric", "comparison"]) for r in runs]
    lines += ["", f"| change [%] | paper | {labels[0]} | {labels[1]} |", "|---|---|---|---|"]
    for key in c[0].index.intersection(c[1].index):  # the paper's five comparisons
        paper = c[0].at[key, "paper_pct"]
        if pd.isna(paper):
            continue
        lines.append(f"| {key[0].replace('_', ' ')}, {key[1]} | {'' if pd.isna(paper) else f'{paper:+.1f}'} "
                     f"| {c[0].at[key, 'ours_pct']:+.1f} | {c[1].at[key, 'ours_pct']:+.1f} |")
    info = []
    for r in runs:
        f = r / "run_info.json"
        info.append(json.loads(f.read_text()) if f.exists() else {})
    nbs = [i.get("notebooks", {}) for i in info]
    both = [k for k in nbs[0] if isinstance(nbs[0][k], (int, float)) and isinstance(nbs[1].get(k), (int, float))]
    if both:
        ta, tb = (sum(n[k] for k in both) for n in nbs)
        lines.append("")
        lines.append(f"notebooks run in both ({', '.join(k.split('_')[0] for k in both)}): {ta:.0f} s → {tb:.0f} s "
                     f"({tb / ta:.2f}×); " + "; ".join(f"{k.split('_')[0]} {nbs[0][k]:.0f} → {nbs[1][k]:.0f} s"
                                                        for k in both))
    return "\n".join(lines)


def read_results(results_dir) -> dict:
    """Read back ``summary``, ``comparison`` and ``{scenario: {table: frame}}`` from a results folder."""
    out = Path(results_dir)
    res = {"summary": pd.read_csv(out / "summary.csv"), "comparison": pd.read_csv(out / "comparison.csv"),
           "scenarios": {}}
    for d in sorted((out / "scenarios").iterdir()):
        if d.is_dir():
            res["scenarios"][d.name] = {t: pd.read_csv(d / f"{t}.csv")
                                        for t in ("dispatch", "voltages", "branches")}
    return res
