"""The README's generated blocks (evsched.readme_tables): the 15-minute run beside the hourly one
and the MV feeder come from their results folders, with the AC checks and the wall times of
run_info.json; a block whose run is absent is left alone with a message naming the command."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evsched import readme_tables as rt
from evsched.report import SUMMARY_COLUMNS

SCENARIOS = ["S0", "S1", "S2", "S3"]


def fake_run(folder, scale=1.0, solve=1.0, dv=1e-9, loss_rel=1e-7, nbs=None, skipped=None, **info):
    """A results folder with the files the blocks read: summary.csv, comparison.csv,
    timings.json, run_info.json (``scale`` multiplies peak-valley and loss)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, name in enumerate(SCENARIOS):
        opt = name in ("S2", "S3")
        loss = (900.0 - 100 * k) * scale
        rows.append({"scenario": name, "peak_valley_kw": (2500.0 - 300 * k) * scale,
                     "peak_valley_substation_kw": (2550.0 - 300 * k) * scale, "loss_kwh": loss,
                     "voltage_deviation_pu": 13.0 - k, "vmin_pu": 0.95 + 0.01 * k / scale, "vmax_pu": 1.01,
                     "max_loading_pct": 50.0 - k, "max_relaxation_gap": 1e-8 if opt else np.nan,
                     "max_relaxation_gap_rel": 2e-9 if opt else np.nan,
                     "ac_loss_kwh": loss / (1 + loss_rel) if opt else loss,
                     "ac_max_voltage_mismatch_pu": dv if opt else np.nan, "exact": True,
                     "reservations_not_honoured": 0 if opt else np.nan,
                     "energy_not_delivered_kwh": 0.0 if opt else np.nan, "curtailment_kwh": 0.0,
                     "solver": "CLARABEL" if opt else "pandapower"})
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame({"metric": ["peak_valley", "loss", "voltage_deviation", "loss", "voltage_deviation"],
                  "comparison": ["S2 vs S1", "S2 vs S1", "S2 vs S1", "S3 vs S2", "S3 vs S2"],
                  "paper_pct": [-40.6, -85.19, -70.74, -57.0, -6.86],
                  "ours_pct": [-27.2 * scale, -40.3, -36.0, -43.8, -40.6]}).to_csv(folder / "comparison.csv", index=False)
    (folder / "timings.json").write_text(json.dumps({n: {"solver": "x", "solve_seconds": solve * (k + 1)}
                                                     for k, n in enumerate(SCENARIOS)}))
    nbs = nbs or {"03_reservations.ipynb": 80.0, "04_scenarios.ipynb": 90.0}
    run = {"params_file": "params/x.yaml", "parameters": {"network": "ieee33", "n_evs": 500},
           "notebooks": nbs, "skipped": skipped or {}, "partial_run": False,
           "total_seconds": sum(v for v in nbs.values() if isinstance(v, float)) + 1.0,
           "python": "3.11.7", "machine": "x86_64", "finished": "2026-11-28T06:30:00", **info}
    (folder / "run_info.json").write_text(json.dumps(run))
    return folder


@pytest.fixture
def runs(tmp_path):
    results = tmp_path / "results"
    fake_run(results, nbs={"03_reservations.ipynb": 80.0, "04_scenarios.ipynb": 90.0,
                           "06_uncertainty.ipynb": 600.0})
    fake_run(results / "15min", scale=1.1, solve=4.0,
             nbs={"03_reservations.ipynb": 240.0, "04_scenarios.ipynb": 360.0, "06_uncertainty.ipynb": "skipped"},
             skipped={"06_uncertainty.ipynb": "written for resolution_min 60 only (this run: resolution_min 15)"})
    return results


def test_15_minute_block_comes_from_both_runs(runs):
    block = rt.resolution_block(runs, runs / "15min")
    begin, end = rt.markers("results-15min")
    assert block.startswith(begin) and block.endswith(end)
    # the per-scenario table of report.compare_runs: 2500 → 2750 kW (+10.0 %)
    assert "| S0 | 2500 → 2750 (+10.0 %)" in block
    # what changes: ranges over the scenarios, from the two summaries and timings
    assert "peak-valley +10.0 %" in block and "loss +10.0 %" in block
    assert "solves take 4.0× the hourly time" in block and "stay certified with 0 reservations" in block
    # the AC checks of both runs against the scenarios' tolerances
    assert "60 min: AC check of S2/S3" in block and "15 min: AC check of S2/S3" in block
    assert "largest |V_AC − V_SOCP| 1.0e-09 p.u. (tolerance 0.0001)" in block
    assert "largest loss mismatch 1.0e-05 % (tolerance 0.5 %): all within" in block
    # the wall time of each run and notebook, and why a notebook was skipped
    assert "wall time, 60 min (`make run`): 771 s wall time" in block and "06 600 s" in block
    assert ("wall time, 15 min (`make run PARAMS=params/15min.yaml`): 601 s wall time" in block
            and "03 240 s; 04 360 s; skipped: 06 — written for resolution_min 60 only" in block)


def test_ac_check_outside_the_tolerance_is_reported(tmp_path):
    run = fake_run(tmp_path / "r", dv=2e-4, loss_rel=-0.01)
    chk = rt.ac_checks(run)
    assert not chk.within.any() and chk.loss_pct.round(9).tolist() == [-1.0, -1.0]
    assert "NOT all within" in rt.ac_line(run)


def test_mv_block_and_partial_run_times(tmp_path):
    run = fake_run(tmp_path / "mv_rural", partial_run=True, rerun_notebooks=["04_scenarios.ipynb"],
                   previous_finished="2026-11-27T10:00:00",
                   nbs={"00_network.ipynb": "skipped", "03_reservations.ipynb": 80.0, "04_scenarios.ipynb": 90.0},
                   skipped={"00_network.ipynb": "written for network ieee33 only (this run: network simbench:x)"})
    block = rt.mv_block(run)
    assert block.startswith(rt.markers("results-mv_rural")[0])
    assert "| S2 EV active power | 1900 | 1950 | 700 | 11.00 |" in block
    assert "exact (gap 2e-09, ΔV 1e-09 p.u., loss +1e-05 %), 0 reservations short" in block
    assert "| S0 uncontrolled charging | 2500 |" in block and "| AC power flow |" in block
    assert "notebooks 170 s in all (notebook(s) 04 re-run with `ONLY=` on 2026-11-28" in block
    assert "skipped: 00 — written for network ieee33 only" in block
    # notebooks skipped for one reason are named together
    run = fake_run(tmp_path / "mv2", nbs={"00_network.ipynb": "skipped", "01_load_forecast.ipynb": "skipped",
                                          "04_scenarios.ipynb": 90.0},
                   skipped={"00_network.ipynb": "ieee33 only", "01_load_forecast.ipynb": "ieee33 only"})
    assert "04 90 s; skipped: 00, 01 — ieee33 only." in rt.mv_block(run)


def test_write_fills_complete_runs_and_leaves_absent_ones(runs, tmp_path):
    readme = tmp_path / "README.md"
    text = "\n\n".join(f"{a}\nold {name}\n{b}" for name in ("results", "results-15min", "results-mv_rural", "bench")
                       for a, b in [rt.markers(name)])
    readme.write_text("intro\n\n" + text + "\n\nend\n")
    messages = rt.write_readme(readme, runs)
    new = readme.read_text()
    assert rt.readme_block(readme) == rt.results_block(runs)   # the default block, as the test of a fresh run reads it
    assert rt.readme_block(readme, "results-15min") == rt.resolution_block(runs, runs / "15min")
    # results/mv_rural/ absent: its block is kept, and the message says what to run
    assert rt.readme_block(readme, "results-mv_rural") == "\n".join([rt.markers("results-mv_rural")[0], "old results-mv_rural",
                                                                      rt.markers("results-mv_rural")[1]])
    assert any(m.startswith("results-mv_rural: skipped,") and "mv_rural/ holds no complete run" in m
               and "make run PARAMS=params/mv_rural.yaml" in m for m in messages)
    assert new.startswith("intro") and new.endswith("end\n")
    # an incomplete 15-minute run (no run_info.json) leaves that block alone too
    (runs / "15min" / "run_info.json").unlink()
    before = readme.read_text()
    messages = rt.write_readme(readme, runs)
    assert readme.read_text() == before and any(m.startswith("results-15min: skipped") for m in messages)


def test_bench_block_shows_each_report_as_written_and_names_the_missing_ones(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    table = "| spec | mode | wall_s |\n|---|---|---|\n| year.yaml | 2 worker(s) | 561.4 |"
    (bench / "sweep_year.md").write_text(f"# evsched sweep benchmark (2026-11-28, x86_64, 2 cores)\n\n{table}\n")
    block = rt.bench_block(bench)
    begin, end = rt.markers("bench")
    assert block.startswith(begin) and block.endswith(end)
    assert table in block and "*evsched sweep benchmark (2026-11-28, x86_64, 2 cores)*" in block
    assert "# evsched" not in block   # a report's title is not a README heading
    for name, _, command in rt.BENCH_REPORTS:
        if name != "sweep_year.md":
            assert f"`results/bench/{name}`)\n\nNot measured yet: run `{command}`." in block, name


def test_the_readme_has_every_generated_block():
    from evsched.paths import ROOT
    text = (ROOT / "README.md").read_text()
    for b in rt.blocks():
        begin, end = rt.markers(b.name)
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end), b.name
