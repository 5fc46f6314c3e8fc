"""The README's result tables, generated from a results folder (never typed in by hand).

``python -m evsched.readme_tables [results/] [--write]`` prints the Markdown block (or, with
``--write``, replaces the block between ``<!-- results:begin -->`` and ``<!-- results:end -->``
in README.md). ``tests/test_notebooks.py`` checks that the README's block equals the block
generated from a fresh default run, so a number in the README always comes from the outputs.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from evsched.paths import RESULTS, ROOT

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
LABELS = {"S0": "S0 uncontrolled charging", "S1": "S1 base load", "S2": "S2 EV active power",
          "S3": "S3 P + Q coordination"}


def _int(x) -> str:
    return "–" if pd.isna(x) else f"{float(x):.0f}"


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


def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"README.md has no {BEGIN} … {END} block")
    return pattern.sub(lambda _: block, text)


def readme_block(readme=ROOT / "README.md") -> str:
    m = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), Path(readme).read_text(), re.S)
    return m.group(0) if m else ""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=str(RESULTS))
    ap.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    args = ap.parse_args(argv)
    block = results_block(args.results)
    if args.write:
        readme = ROOT / "README.md"
        readme.write_text(replace_block(readme.read_text(), block))
        print(f"README.md: results block rewritten from {args.results}")
    else:
        print(block)


if __name__ == "__main__":
    main()
