"""Sweeps (evsched.sweep, `evsched sweep`): validation before running, rows for failing cases,
resume, byte-identical tables serially, on a LocalCluster and on a real multi-process cluster."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evsched import cli, interpretations, sweep
from evsched.errors import InputError
from evsched.paths import PARAMS, ROOT
from evsched.report import SUMMARY_COLUMNS

BASE = PARAMS / "default.yaml"
SMALL = {"n_evs": 60}  # a small fleet keeps every solve short


def write_spec(path: Path, text: str) -> Path:
    path.write_text(f"base: {BASE}\n" + text)
    return path


# 2 × 2 grid: the v_min_pu = 0.99 cases are valid parameters but S2 is infeasible at solve time
GRID = """\
set: {n_evs: 60}
grid:
  v_min_pu: [0.95, 0.99]
  dg_scale: [1.0, 2.0]
days: ["2016-07-13"]
scenarios: [S1, S2]
"""


@pytest.fixture(scope="module")
def serial_grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    spec = write_spec(d / "grid.yaml", GRID)
    df = sweep.run_sweep(spec, d / "serial", workers=0, progress=False)
    return spec, d / "serial", df


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("text, match", [
    ("grid:\n  v_min_pu: [0.95, 1.5]\n",
     r"grid.yaml, case 2 of 2 \(v_min_pu=1.5\): .*'v_min_pu' = 1.5: must be in \[0.8, 1.0\]"),
    ("grid:\n  v_mn_pu: [0.95]\n", r"grid.yaml, grid: unknown parameter 'v_mn_pu' \(did you mean 'v_min_pu'\?\)"),
    ("zip:\n  pv_buses: [[13, 24]]\n  wt_buses: [[18, 33], [2, 3]]\n", r"zip: the lists must have equal lengths"),
    ("days: {start: 2016-05-01, end: 2016-05-20}\n",
     r"case 1 of 20 \(target_day='2016-05-01'\): .*the earliest allowed target day is 2016-05-10"),
    ("zip:\n  pv_buses: [[13, 40]]\n", r"case 1 of 1 \(pv_buses=\[13, 40\]\).*'pv_buses' = \[13, 40\]: bus 40"),
    ("grid:\n  load_pf: [0.5]\n", r"case 1 of 1 \(load_pf=0.5\), parameter 'load_pf' = 0.5: must be a number in 0.7..1.0"),
    ("grid:\n  dg_scale: [true]\n", r"parameter 'dg_scale' = True: must be a number in 0..10"),
    ("scenarios: [S2, S4]\n", r"scenarios: scenario 'S4': must be one of"),
    ("grids:\n  n_evs: [10]\n", r"unknown spec key\(s\) \['grids'\]"),
    ("grid:\n  n_evs: 10\n", r"grid, 'n_evs' = 10: must be a non-empty list"),
])
def test_bad_spec_rejected_before_anything_runs(tmp_path, text, match):
    spec = write_spec(tmp_path / "grid.yaml", text)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=match):
        sweep.run_sweep(spec, out, workers=0, progress=False)
    assert not out.exists()


def test_every_shipped_spec_is_valid():
    for spec in sorted((PARAMS / "sweeps").glob("*.yaml")):
        s = sweep.load_spec(spec)
        assert s.cases, spec
    year = sweep.load_spec(PARAMS / "sweeps" / "year.yaml")
    assert [c.swept["day"] for c in year.cases][::len(year.cases) - 1] == ["2016-05-10", "2016-12-31"]


def test_case_id_is_a_stable_hash_of_the_parameters(tmp_path):
    a = sweep.load_spec(write_spec(tmp_path / "a.yaml", "grid:\n  dg_scale: [2.0]\n"))
    b = sweep.load_spec(write_spec(tmp_path / "b.yaml",
                                   "set: {pv_capacity_kw: [1000.0, 1000.0], wt_capacity_kw: [1000.0, 1000.0]}\n"))
    c = sweep.load_spec(write_spec(tmp_path / "c.yaml", "grid:\n  load_pf: [null, 0.95]\n"))
    assert a.cases[0].case_id == b.cases[0].case_id  # the same case, however it is written
    plain, pf = c.cases
    assert plain.case_id == plain.input_key and pf.case_id != plain.case_id
    assert pf.input_key == plain.input_key  # one build shared by both


# --------------------------------------------------------------------------- running
def test_failing_case_is_a_row_never_the_end(serial_grid):
    _, out, df = serial_grid
    assert list(df.columns[:6]) == ["case_id", "v_min_pu", "dg_scale", "day", "scenario", "peak_valley_kw"]
    assert set(SUMMARY_COLUMNS) <= set(df.columns)
    assert {"exact", "status", "error", "voltage_deviation_sq_pu2"} <= set(df.columns)
    assert len(df) == 8 and df.case_id.nunique() == 4
    bad = df[(df.v_min_pu == 0.99) & (df.scenario == "S2")]
    assert (bad.status == "error").all()
    assert bad.error.str.contains("OptimisationError").all()
    assert bad.error.str.contains(r"binds at hour\(s\)").all() and bad.error.str.contains("bus").all()
    good = df[df.v_min_pu == 0.95]
    assert (good.status == "ok").all() and good.exact.all() and good.error.isna().all()
    assert (df[df.scenario == "S1"].status == "ok").all()  # S1 of the infeasible cases still ran
    info = json.loads((out / "sweep_info.json").read_text())
    assert info["run"] == 4 and info["rows_by_status"]["error"] == 2
    t = pd.read_csv(out / "timings.csv")
    assert {"case_id", "scenario", "seconds", "cpu_s", "worker"} <= set(t.columns)
    assert "seconds" not in df.columns


@pytest.mark.slow
def test_local_cluster_gives_the_same_table_as_serial(serial_grid, tmp_path):
    spec, serial, _ = serial_grid
    sweep.run_sweep(spec, tmp_path / "dask", workers=2, progress=False)
    assert (tmp_path / "dask" / "cases.csv").read_bytes() == (serial / "cases.csv").read_bytes()
    info = json.loads((tmp_path / "dask" / "sweep_info.json").read_text())
    assert info["mode"].startswith("LocalCluster, 2 worker")
    workers = pd.read_csv(tmp_path / "dask" / "timings.csv").worker.unique()
    assert len(workers) >= 1 and all(str(os.getpid()) not in w for w in workers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_scheduler_address_submits_to_a_real_cluster(serial_grid, tmp_path):
    """`dask scheduler` + two `dask worker` processes started here; the sweep is submitted with
    scheduler=...; the processes are stopped whatever happens."""
    from distributed import Client

    spec, serial, _ = serial_grid
    dask = Path(sys.executable).parent / "dask"
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = []
    with open(tmp_path / "cluster.log", "w") as log:
        try:
            procs.append(subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
            for _ in range(2):
                procs.append(subprocess.Popen([str(dask), "worker", addr, "--nthreads", "1", "--nworkers", "1",
                                               "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
            deadline = time.monotonic() + 90
            while True:  # the scheduler needs a moment to listen
                try:
                    with Client(addr, timeout="5s") as c:
                        c.wait_for_workers(2, timeout=60)
                        pids = set(c.run(os.getpid).values())
                    break
                except (OSError, TimeoutError):
                    if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                        raise AssertionError("dask cluster did not start: "
                                             + (tmp_path / "cluster.log").read_text()[-2000:]) from None
                    time.sleep(0.5)
            sweep.run_sweep(spec, tmp_path / "remote", scheduler=addr, progress=False)
            assert (tmp_path / "remote" / "cases.csv").read_bytes() == (serial / "cases.csv").read_bytes()
            used = {int(w.rsplit(":", 1)[1]) for w in pd.read_csv(tmp_path / "remote" / "timings.csv").worker}
            assert used <= pids and len(pids) == 2
            with Client(addr, timeout="5s") as c:  # the cluster is left as it was
                assert len(c.scheduler_info()["workers"]) == 2
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in reversed(procs):
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


S1_ONLY = """\
set: {n_evs: 60}
days: [%s]
scenarios: [S1]
"""


def test_resume_skips_done_cases_and_rerun_is_byte_identical(tmp_path):
    two = write_spec(tmp_path / "two.yaml", S1_ONLY % '"2016-07-13", "2016-07-14"')
    three = write_spec(tmp_path / "three.yaml", S1_ONLY % '"2016-07-13", "2016-07-14", "2016-07-15"')
    out = tmp_path / "out"
    sweep.run_sweep(two, out, workers=0, progress=False)
    first = (out / "cases.csv").read_bytes()
    with pytest.raises(InputError, match="exists: use --resume"):
        sweep.run_sweep(three, out, workers=0, progress=False)
    assert (out / "cases.csv").read_bytes() == first
    sweep.run_sweep(three, out, workers=0, progress=False, resume=True)
    info = json.loads((out / "sweep_info.json").read_text())
    assert info["run"] == 1 and info["skipped_resume"] == 2
    df = sweep.read_cases(out)
    assert list(df.day) == ["2016-07-13", "2016-07-14", "2016-07-15"]
    assert (out / "cases.csv").read_bytes().startswith(first)
    fresh = tmp_path / "fresh"
    sweep.run_sweep(three, fresh, workers=0, progress=False)  # a fresh run = the resumed one, byte for byte
    assert (fresh / "cases.csv").read_bytes() == (out / "cases.csv").read_bytes()
    sweep.run_sweep(three, out, workers=0, progress=False, resume=True)  # nothing left to do
    assert json.loads((out / "sweep_info.json").read_text())["run"] == 0


def test_interrupted_sweep_keeps_what_is_done_and_lost_rows_are_retried(tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "s.yaml", S1_ONLY % '"2016-07-13", "2016-07-14", "2016-07-15"')
    out = tmp_path / "out"
    real = sweep.evaluate_case
    calls = []

    def flaky(inputs, options, names):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(inputs, options, names)

    monkeypatch.setattr(sweep, "evaluate_case", flaky)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(spec, out, workers=0, progress=False)
    done = sweep.read_cases(out)
    assert list(done.day) == ["2016-07-13"] and (done.status == "ok").all()
    assert json.loads((out / "sweep_info.json").read_text())["interrupted"] is True
    # a row whose worker died ('lost') is run again by --resume
    df = sweep.read_cases(out)
    df.loc[0, "status"] = "lost"
    df.to_csv(out / "cases.csv", index=False)
    monkeypatch.setattr(sweep, "evaluate_case", real)
    sweep.run_sweep(spec, out, workers=0, progress=False, resume=True)
    assert json.loads((out / "sweep_info.json").read_text())["run"] == 3
    assert list(sweep.read_cases(out).status) == ["ok"] * 3


def test_cli_sweep(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml", S1_ONLY % '"2016-07-13"')
    out = tmp_path / "out"
    assert cli.main(["sweep", str(spec), "--workers", "0", "--out", str(out), "--no-progress"]) == 0
    assert (out / "cases.csv").exists()
    err = capsys.readouterr().err
    assert "1 case(s) × 1 scenario(s)" in err and "rows ok 1" in err
    assert cli.main(["sweep", str(spec), "--workers", "0", "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["sweep", str(spec), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "no" / "such")]) == 1
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- interpretations
@pytest.fixture(scope="module")
def small_case():
    from evsched.case import build_case, load_case
    return build_case(load_case(BASE, **SMALL))


def test_load_power_factor_and_squared_deviation(small_case):
    cd = interpretations.with_load_power_factor(small_case, 0.95)
    assert interpretations.load_power_factor(cd) == pytest.approx(0.95, abs=1e-12)
    assert np.array_equal(cd.load_p_kw, small_case.load_p_kw)
    assert interpretations.with_load_power_factor(small_case, None) is small_case
    v = pd.DataFrame({"hour": [0, 0], "bus": [1, 2], "v_pu": [1.0, 0.9]})
    assert interpretations.voltage_deviation_sq(v, dt_h=0.5) == pytest.approx(0.005)


def test_fixed_pf_renewables_supply_q_within_the_inverter(small_case):
    groups = interpretations.fixed_pf_renewables(small_case, 0.9)
    tan = math.tan(math.acos(0.9))
    for g in groups:
        a = -g.p_max_kw
        s = small_case.case.inverter_kva_ratio * 500.0
        assert np.allclose(g.q_min_kvar, g.q_max_kvar)
        assert np.allclose(-g.q_max_kvar, np.minimum(a * tan, np.sqrt(np.maximum(s ** 2 - a ** 2, 0))))
        assert (g.q_max_kvar <= 0).all()
    with pytest.raises(InputError, match="scenario 'S2_pf0.5'"):
        interpretations.check_scenario("S2_pf0.5")


@pytest.mark.slow
def test_s2_variants_are_certified_and_ordered(small_case):
    r = {n: interpretations.run(n, small_case) for n in ("S2", "S2_pf0.95", "S2_renq", "S3")}
    assert all(x.exact for x in r.values())
    obj = {n: x.opf.objective for n, x in r.items()}  # more freedom, never a worse optimum
    assert obj["S2_renq"] <= obj["S2"] * (1 + 1e-6) and obj["S3"] <= obj["S2_renq"] * (1 + 1e-6)
    st = r["S2_renq"].dispatch.query("device == 'ev_station'")
    ren = r["S2_renq"].dispatch.query("device in ['pv', 'wt']")
    assert np.allclose(st.q_kvar, 0) and (ren.q_kvar.abs() > 1).any()
    rows = pd.DataFrame([{**x.summary(), "scenario": n,
                          "voltage_deviation_sq_pu2": interpretations.voltage_deviation_sq(x.voltages)}
                         for n, x in {**r, "S1": interpretations.run("S1", small_case)}.items()])
    ratios = interpretations.paper_ratios(rows, s2="S2_renq", vdev="sq")
    assert set(ratios) == set(interpretations.FIGURES)
    assert ratios[("loss", "S3 vs S2")] <= 0 and all(np.isfinite(list(ratios.values())))


def test_calibration_table_counts_figures_within_tolerance():
    # one synthetic case whose S2_renq reading hits the paper's S2/S1 loss and Γ exactly
    base = {"case_id": "c1", "dg_scale": 1.0, "day": "2016-12-07"}
    s = {"S1": (1000.0, 100.0, 10.0, 1.0), "S2": (600.0, 50.0, 5.0, 0.5),
         "S2_renq": (594.0, 100.0 * (1 - 0.8519), 10.0 * (1 - 0.7074), 0.2), "S3": (590.0, 10.0, 2.0, 0.1)}
    rows = [{**base, "scenario": k, "peak_valley_kw": pv, "loss_kwh": loss, "voltage_deviation_pu": g,
             "voltage_deviation_sq_pu2": g2, "exact": True} for k, (pv, loss, g, g2) in s.items()]
    cal = interpretations.calibration_table(pd.DataFrame(rows))
    assert set(cal.s2_reading) == {"S2", "S2_renq"} and set(cal.vdev) == {"abs", "sq"}
    hit = cal[(cal.s2_reading == "S2_renq") & (cal.vdev == "abs")].iloc[0]
    assert hit["loss S2/S1"] == pytest.approx(-85.19) and hit["Γ S2/S1"] == pytest.approx(-70.74)
    assert hit.certified and hit.n_within == 3  # peak-valley −40.6 too; S3/S2 loss −90 % and Γ −80 % are not
    table = interpretations.comparison_with_paper(hit)
    assert list(table.columns) == ["metric", "comparison", "paper_pct", "ours_pct", "difference_points"]
    assert table.difference_points.abs().iloc[:3].max() < 1e-9
    rows[1]["exact"] = False  # an uncertified S2 leaves its reading out
    cal = interpretations.calibration_table(pd.DataFrame(rows))
    assert not cal[cal.s2_reading == "S2"].certified.any() and cal[cal.s2_reading == "S2"]["loss S2/S1"].isna().all()


def test_case_parameters_by_id_or_by_swept_values(tmp_path):
    s = sweep.load_spec(write_spec(tmp_path / "c.yaml", "zip:\n  pv_buses: [[24, 30]]\n"
                                   "grid:\n  dg_scale: [2.0]\n  load_pf: [null, 0.95]\n"))
    plain, pf = s.cases
    changed = {"pv_buses": [24, 30], "pv_capacity_kw": [1000.0, 1000.0], "wt_capacity_kw": [1000.0, 1000.0]}
    assert sweep.case_parameters(s, plain.case_id) == (changed, {})
    row = {"pv_buses": "[24, 30]", "dg_scale": 2.0, "load_pf": 0.95, "day": "2016-12-07"}  # as in cases.csv
    assert sweep.case_parameters(s, "an-older-id", swept=row) == (changed, {"load_pf": 0.95})
    with pytest.raises(InputError, match="no case with case_id"):
        sweep.case_parameters(s, "an-older-id")


def test_a_sweep_runs_on_the_feeder_its_base_file_names(tmp_path):
    """A spec based on params/mv_rural.yaml validates its buses on the SimBench feeder (not on
    IEEE 33) and runs its cases there (notebook 07 under `make run PARAMS=params/mv_rural.yaml`)."""
    spec = sweep.spec_mapping(PARAMS / "sweeps" / "year_small.yaml", base=PARAMS / "mv_rural.yaml")
    small = sweep.load_spec({**spec, "days": ["2016-12-06"], "scenarios": ["S1", "S2"]}, source="mv")
    assert [c.case.network for c in small.cases] == ["simbench:1-MV-rural--0-sw"]
    cases = sweep.run_sweep(small, tmp_path / "out", workers=0, progress=False)
    assert cases.status.tolist() == ["ok", "ok"] and cases.exact.all()
    bad = {**spec, "days": ["2016-12-06"], "set": {"station_buses": [13, 52, 200]}}
    with pytest.raises(InputError, match=r"bus 200 must be a non-substation bus of 'simbench:1-MV-rural--0-sw'"):
        sweep.load_spec(bad, source="mv")
