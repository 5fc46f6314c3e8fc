"""The README's result tables, generated from results folders (never typed in by hand).

``python -m evsched.readme_tables [--write]`` prints the Markdown blocks (or, with ``--write``,
replaces each block between its markers in README.md):

``results`` (``<!-- results:begin -->`` … ``<!-- results:end -->``)
    the default run, ``results/``: :func:`results_block`. ``tests/test_notebooks.py`` checks
    that the README's block equals the block generated from a fresh default run, so it holds
    no timings (they change from run to run).
``results-15min``
    the same day on 15-minute steps beside the hourly run (``results/15min/`` and
    ``results/``): :func:`resolution_block` — the per-scenario table and the paper's five
    comparisons of :func:`evsched.report.compare_runs`, what changes (:func:`what_changes`),
    the AC checks of both runs and the wall time of each run and notebook.
``results-mv_rural``
    the study on the SimBench MV feeder (``results/mv_rural/``): :func:`mv_block`.
``bench``
    the benchmarks of ``make bench`` / ``make bench-year`` (``results/bench/``):
    :func:`bench_block` — each benchmark's own Markdown report (machine, date, load, table),
    a line naming the command for a report that is missing.

A block whose results folder holds no complete run (no ``run_info.json``) is left as it is
in README.md, with a message naming the folder and the command that makes it.
``python -m evsched.readme_tables DIR`` prints the default block of another folder.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from evsched.paths import RESULTS, ROOT

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
LABELS = {"S0": "S0 uncontrolled charging", "S1": "S1 base load", "S2": "S2 EV active power",
          "S3": "S3 P + Q coordination"}
OPTIMISED = ("S2", "S3")
"""The scenarios whose result is an optimisation checked by an AC power flow."""


def markers(name: str) -> tuple[str, str]:
    """The begin / end markers of README block ``name`` (``results`` is the default run's)."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def _int(x) -> str:
    return "–" if pd.isna(x) else f"{float(x):.0f}"


def _minus(text: str) -> str:
    return text.replace("-", "−")


def complete(folder) -> bool:
    """True if ``folder`` holds a complete run (its ``run_info.json``, written last)."""
    return (Path(folder) / "run_info.json").is_file()


def results_block(results_dir=RESULTS) -> str:
    """Markdown tables of ``summary.csv`` and ``comparison.csv`` of a results folder."""
    out = Path(results_dir)
    s = pd.read_csv(out / "summary.csv")
    c = pd.read_csv(out / "comparison.csv")
    lines = [BEGIN,
             "| scenario | peak-valley [kW] | at the substation [kW] | loss [kWh/day] | Γ [p.u.·h] "
             "| V min [p.u.] | V max [p.u.] | reservations not honoured | exact |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in s.iterrows():
        lines.append(f"| {LABELS.get(r.scenario, r.scenario)} | {_int(r.peak_valley_kw)} "
                     f"| {_int(r.peak_valley_substation_kw)} | {_int(r.loss_kwh)} "
                     f"| {r.voltage_deviation_pu:.2f} | {r.vmin_pu:.3f} | {r.vmax_pu:.3f} "
                     f"| {_int(r.reservations_not_honoured)} | {'yes' if r.exact else 'NO'} |")
    lines += ["", "| comparison | paper | ours |", "|---|---|---|"]
    for _, r in c.dropna(subset=["paper_pct"]).iterrows():
        lines.append(f"| {r.metric.replace('_', ' ')}, {r.comparison} | {r.paper_pct:+.2f} % "
                     f"| {r.ours_pct:+.1f} % |".replace("-", "−"))
    opt = s[s.scenario.isin(["S2", "S3"])]
    lines += ["", f"Largest relative cone gap of S2/S3: {opt.max_relaxation_gap_rel.max():.1e}; "
                  f"largest |V_AC − V_SOCP|: {opt.ac_max_voltage_mismatch_pu.max():.1e} p.u.; "
                  f"energy not delivered to EVs: {opt.energy_not_delivered_kwh.sum():.1f} kWh.", END]
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers
def _run_info(folder) -> dict:
    f = Path(folder) / "run_info.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def ac_checks(folder) -> pd.DataFrame:
    """Per optimised scenario of a run: the relative cone gap, max |V_AC − V_SOCP| [p.u.] and the
    loss mismatch ``100 (ζ_SOCP − ζ_AC) / ζ_AC`` [%], with the tolerances of
    :mod:`evsched.scenarios` and whether both hold."""
    from evsched.scenarios import AC_LOSS_TOL_REL, AC_VOLTAGE_TOL_PU

    s = pd.read_csv(Path(folder) / "summary.csv").set_index("scenario")
    opt = s.loc[s.index.intersection(OPTIMISED)]
    out = pd.DataFrame({"gap_rel": opt.max_relaxation_gap_rel,
                        "dv_pu": opt.ac_max_voltage_mismatch_pu,
                        "loss_pct": 100 * (opt.loss_kwh - opt.ac_loss_kwh) / opt.ac_loss_kwh})
    out["within"] = (out.dv_pu <= AC_VOLTAGE_TOL_PU) & (out.loss_pct.abs() <= 100 * AC_LOSS_TOL_REL)
    out.attrs.update(dv_tol=AC_VOLTAGE_TOL_PU, loss_tol_pct=100 * AC_LOSS_TOL_REL)
    return out


def ac_line(folder, label: str = "") -> str:
    """One line: the AC checks of a run's S2/S3 against their tolerances."""
    chk = ac_checks(folder)
    s = pd.read_csv(Path(folder) / "summary.csv").set_index("scenario")
    opt = s.loc[s.index.intersection(OPTIMISED)]
    verdict = "all within" if bool(chk.within.all()) else "NOT all within"
    return (f"{label}AC check of {'/'.join(chk.index)}: largest relative cone gap "
            f"{chk.gap_rel.max():.1e}, largest |V_AC − V_SOCP| {chk.dv_pu.max():.1e} p.u. "
            f"(tolerance {chk.attrs['dv_tol']:g}), largest loss mismatch "
            f"{chk.loss_pct.abs().max():.1e} % (tolerance {chk.attrs['loss_tol_pct']:g} %): {verdict}; "
            f"verdict `exact` {'yes' if bool(opt.exact.all()) else 'NO'}, reservations not honoured "
            f"{_int(opt.reservations_not_honoured.sum())}, energy not delivered "
            f"{opt.energy_not_delivered_kwh.sum():.1f} kWh.")


def _notebook(name: str) -> str:
    return name.split("_")[0]


def wall_time_lines(folder, label: str) -> list[str]:
    """The wall time of a run (``run_info.json``): the total, each notebook's time, the
    notebooks skipped and why, and the machine; a partial run (``--only``) says which
    notebooks were re-run (the others' times are those of the complete run)."""
    info = _run_info(folder)
    nbs = info.get("notebooks") or {}
    ran = {k: v for k, v in nbs.items() if isinstance(v, (int, float))}
    skipped = [k for k, v in nbs.items() if not isinstance(v, (int, float))]
    reasons = info.get("skipped") if isinstance(info.get("skipped"), dict) else {}
    total = sum(ran.values())
    if info.get("partial_run"):
        head = (f"{label}: notebooks {total:.0f} s in all (notebook(s) "
                f"{', '.join(_notebook(k) for k in info.get('rerun_notebooks', []))} re-run with `ONLY=` on "
                f"{info.get('finished', '?')[:10]}, the others from the complete run of "
                f"{str(info.get('previous_finished') or '?')[:10]})")
    else:
        head = (f"{label}: {info.get('total_seconds', total):.0f} s wall time "
                f"(run finished {str(info.get('finished', '?'))[:16].replace('T', ' ')}, "
                f"Python {info.get('python', '?')}, {info.get('machine', '?')})")
    why: dict[str, list[str]] = {}   # notebooks skipped for the same reason are named together
    for k in skipped:
        why.setdefault(reasons.get(k, "outside its scope"), []).append(_notebook(k))
    lines = [head + "; " + "; ".join(f"{_notebook(k)} {v:.0f} s" for k, v in ran.items())
             + (("; skipped: " + "; ".join(f"{', '.join(nbs)} — {reason}" for reason, nbs in why.items()))
                if skipped else "") + "."]
    return lines


# --------------------------------------------------------------------------- 15 minutes
def what_changes(hourly, quarter) -> str:
    """The change from the hourly run to the 15-minute run, as ranges over the scenarios
    (computed from both ``summary.csv``, ``comparison.csv`` and ``timings.json``)."""
    from evsched import metrics

    a = pd.read_csv(Path(hourly) / "summary.csv").set_index("scenario")
    b = pd.read_csv(Path(quarter) / "summary.csv").set_index("scenario")
    names = a.index.intersection(b.index)
    a, b = a.loc[names], b.loc[names]

    def rng(col, unit="%", fmt="{:+.1f}", diff=False):
        d = (b[col] - a[col]) if diff else pd.Series(
            [metrics.pct_change(float(y), float(x)) for x, y in zip(a[col], b[col])], index=names)
        lo, hi = _minus(fmt.format(d.min())), _minus(fmt.format(d.max()))
        return (lo if lo == hi else f"{lo} to {hi}") + (f" {unit}" if unit else "")

    ca = pd.read_csv(Path(hourly) / "comparison.csv").dropna(subset=["paper_pct"]).set_index(["metric", "comparison"])
    cb = pd.read_csv(Path(quarter) / "comparison.csv").dropna(subset=["paper_pct"]).set_index(["metric", "comparison"])
    moved = (cb.ours_pct - ca.ours_pct).abs()
    same_sign = bool(((cb.ours_pct > 0) == (cb.paper_pct > 0)).all())
    ta = json.loads((Path(hourly) / "timings.json").read_text())
    tb = json.loads((Path(quarter) / "timings.json").read_text())
    opt = [n for n in OPTIMISED if n in ta and n in tb]
    ratio = [float(tb[n]["solve_seconds"]) / float(ta[n]["solve_seconds"]) for n in opt]
    exact = bool(b.loc[b.index.intersection(OPTIMISED), "exact"].all())
    short = b.loc[b.index.intersection(OPTIMISED), "reservations_not_honoured"].sum()
    times = f"{min(ratio):.1f}×" if f"{min(ratio):.1f}" == f"{max(ratio):.1f}" else f"{min(ratio):.1f}–{max(ratio):.1f}×"
    return (f"What changes from 60 to 15 minutes (S0–S3): peak-valley {rng('peak_valley_kw')}, at the "
            f"substation {rng('peak_valley_substation_kw')}; loss {rng('loss_kwh')}; Γ {rng('voltage_deviation_pu')}; "
            f"V min {rng('vmin_pu', 'p.u.', '{:+.4f}', diff=True)}, V max {rng('vmax_pu', 'p.u.', '{:+.4f}', diff=True)}; "
            f"the paper's five comparisons move by at most {moved.max():.1f} percentage points"
            f"{' and keep the paper' + chr(39) + 's sign' if same_sign else ''}; S2/S3 "
            f"{'stay certified' if exact else 'are NOT all certified'} with {_int(short)} reservations not honoured; "
            f"their solves take {times} the hourly time.")


def resolution_block(hourly=RESULTS, quarter=RESULTS / "15min") -> str:
    """README block ``results-15min``: the 15-minute run beside the hourly one."""
    from evsched.report import compare_runs

    begin, end = markers("results-15min")
    lines = [begin, compare_runs(hourly, quarter), "", what_changes(hourly, quarter), "",
             "- " + ac_line(hourly, "60 min: "), "- " + ac_line(quarter, "15 min: ")]
    lines += ["- " + x for x in wall_time_lines(hourly, "wall time, 60 min (`make run`)")]
    lines += ["- " + x for x in wall_time_lines(quarter, "wall time, 15 min (`make run PARAMS=params/15min.yaml`)")]
    return "\n".join(lines + [end])


# --------------------------------------------------------------------------- MV feeder
def mv_block(folder=RESULTS / "mv_rural") -> str:
    """README block ``results-mv_rural``: the study on a SimBench MV feeder."""
    out = Path(folder)
    s = pd.read_csv(out / "summary.csv")
    info = _run_info(out)
    p = info.get("parameters", {})
    begin, end = markers("results-mv_rural")
    lines = [begin,
             f"`{p.get('network', '?')}`, {p.get('target_day', '2016-12-07')}, {p.get('n_evs', '?')} EVs, "
             f"{p.get('resolution_min', 60)}-minute steps (`{info.get('params_file', '?')}`):", "",
             "| scenario | peak-valley [kW] | at the substation [kW] | loss [kWh/day] | Γ [p.u.·h] | V min [p.u.] "
             "| V max [p.u.] | max line loading [%] | curtailed [kWh] | certified |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    chk = ac_checks(out)
    for _, r in s.iterrows():
        if r.scenario in chk.index:
            c = chk.loc[r.scenario]
            cert = (f"{'exact' if r.exact else 'NOT exact'} (gap {c.gap_rel:.0e}, ΔV {c.dv_pu:.0e} p.u., "
                    f"loss {c.loss_pct:+.0e} %), {_int(r.reservations_not_honoured)} reservations short")
        else:
            cert = "AC power flow"
        lines.append(f"| {LABELS.get(r.scenario, r.scenario)} | {_int(r.peak_valley_kw)} "
                     f"| {_int(r.peak_valley_substation_kw)} | {_int(r.loss_kwh)} | {r.voltage_deviation_pu:.2f} "
                     f"| {r.vmin_pu:.3f} | {r.vmax_pu:.3f} | {r.max_loading_pct:.1f} "
                     f"| {0.0 if pd.isna(r.curtailment_kwh) else r.curtailment_kwh:.0f} | {cert} |")
    c = pd.read_csv(out / "comparison.csv").dropna(subset=["paper_pct"])
    lines += ["", "| comparison | paper | ours |", "|---|---|---|"]
    for _, r in c.iterrows():
        lines.append(_minus(f"| {r.metric.replace('_', ' ')}, {r.comparison} | {r.paper_pct:+.2f} % "
                            f"| {r.ours_pct:+.1f} % |"))
    lines += ["", "- " + ac_line(out)]
    lines += ["- " + x for x in wall_time_lines(out, f"wall time (`make run PARAMS={info.get('params_file', '?')}`)")]
    return "\n".join(lines + [end])


# --------------------------------------------------------------------------- benchmarks
BENCH_REPORTS = (
    ("bench.md", "model build, solve and re-solve, 33 to 993 buses and the SimBench MV feeders", "make bench"),
    ("sweep_year.md", "the full-year sweep (params/sweeps/year.yaml) on 1 and 2 dask workers", "make bench-year"),
    ("sweep_paper.md", "the paper-calibration sweep (params/sweeps/paper.yaml) on 1 and 2 dask workers",
     "make bench-paper"),
    ("sweep.md", "the small year sweep in this process and on 1 and 2 workers", "make bench"),
    ("ev_models.md", "one storage per EV against the station envelope", "make bench"),
    ("uncertainty.md", "MPC re-dispatch and the Monte Carlo of notebook 06", "make bench"),
)
"""The benchmark reports of ``results/bench/`` shown in the README: file, what it measures, command."""


def bench_block(folder=RESULTS / "bench") -> str:
    """The README's benchmark block: every report of :data:`BENCH_REPORTS` as its benchmark
    wrote it (its ``# title`` line, with the machine, date and load, becomes bold text)."""
    begin, end = markers("bench")
    lines = [begin, "",
             f"Generated by `python -m evsched.readme_tables --write` from `{_rel(Path(folder))}/`.", ""]
    for name, what, command in BENCH_REPORTS:
        path = Path(folder) / name
        lines.append(f"**{what[0].upper() + what[1:]}** (`{command}`; `results/bench/{name}`)")
        lines.append("")
        if not path.is_file():
            lines += [f"Not measured yet: run `{command}`.", ""]
            continue
        text = path.read_text().strip().splitlines()
        if text and text[0].startswith("#"):
            lines += [f"*{text[0].lstrip('#').strip()}*"] + text[1:]
        else:
            lines += text
        lines.append("")
    return "\n".join(lines + [end])


# --------------------------------------------------------------------------- README
@dataclass(frozen=True)
class Block:
    """A generated README block: its name (markers), the folders it needs and its builder."""

    name: str
    folders: tuple
    build: Callable[[], str]
    command: str
    reads: tuple = ()
    """Folders read without being required (the benchmark reports: a missing one is named)."""


def blocks(results=RESULTS) -> list[Block]:
    """The README's generated blocks (default run, 15 minutes, MV feeder, benchmarks)."""
    results = Path(results)
    return [Block("results", (results,), lambda: results_block(results), "make run"),
            Block("results-15min", (results, results / "15min"),
                  lambda: resolution_block(results, results / "15min"),
                  "make run && make run PARAMS=params/15min.yaml"),
            Block("results-mv_rural", (results / "mv_rural",), lambda: mv_block(results / "mv_rural"),
                  "make run PARAMS=params/mv_rural.yaml"),
            Block("bench", (), lambda: bench_block(results / "bench"), "make bench", reads=(results / "bench",))]


def replace_block(text: str, block: str, name: str = "results") -> str:
    """``text`` with README block ``name`` replaced by ``block`` (which carries its markers)."""
    begin, end = markers(name)
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {begin} … {end} block")
    return pattern.sub(lambda _: block, text)


def readme_block(readme=ROOT / "README.md", name: str = "results") -> str:
    begin, end = markers(name)
    m = re.search(re.escape(begin) + ".*?" + re.escape(end), Path(readme).read_text(), re.S)
    return m.group(0) if m else ""


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def write_readme(readme=ROOT / "README.md", results=RESULTS) -> list[str]:
    """Rewrite every block of README.md whose results are complete; leave the others as they
    are. Returns one message per block (written, or skipped and why)."""
    readme = Path(readme)
    text = readme.read_text()
    messages = []
    for b in blocks(results):
        missing = [f for f in b.folders if not complete(f)]
        if missing:
            messages.append(f"{b.name}: skipped, {', '.join(_rel(f) + '/' for f in missing)} holds no complete "
                            f"run (no run_info.json); run `{b.command}`, then this command again")
            continue
        text = replace_block(text, b.build(), b.name)
        messages.append(f"{b.name}: rewritten from {', '.join(_rel(f) + '/' for f in b.folders + b.reads)}")
    readme.write_text(text)
    return messages


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=None,
                    help="print the default block of this results folder only")
    ap.add_argument("--write", action="store_true", help="rewrite the blocks in README.md")
    args = ap.parse_args(argv)
    if args.write:
        for msg in write_readme(results=Path(args.results) if args.results else RESULTS):
            print(f"README.md {msg}")
    elif args.results:
        print(results_block(args.results))
    else:
        for b in blocks():
            missing = [f for f in b.folders if not complete(f)]
            print(f"({b.name}: skipped, no complete run in {', '.join(_rel(f) + '/' for f in missing)}; "
                  f"run `{b.command}`)" if missing else b.build())
            print()


if __name__ == "__main__":
    main()
