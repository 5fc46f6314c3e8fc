"""Scenarios S0-S3 on the default case: ordering of losses, AC validation, limits, the paper's
signs and the results contract (tolerances stated in each test)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evsched import report, scenarios
from evsched.case import build_case, load_case
from evsched.errors import InputError

V_TOL = 1e-4       # p.u., AC vs SOCP voltage
LOSS_TOL = 0.005   # relative, AC vs SOCP loss


@pytest.fixture(scope="module")
def case_data():
    return build_case(load_case())


@pytest.fixture(scope="module")
def results(case_data):
    return scenarios.run_all(case_data)


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    report.write_results(results, out)
    return out


def test_case_uses_the_real_modules(case_data):
    assert not any("FALLBACK" in s for s in case_data.sources.values()), case_data.sources
    assert case_data.load_p_kw.shape == (33, 24)
    assert len(case_data.reservations) == 500
    assert list(case_data.stations.stations) == sorted(case_data.case.station_buses)


def test_s3_loss_not_above_s2(results):
    # S3's feasible set contains S2's (q = 0 is allowed), so its optimum cannot be worse.
    assert results["S3"].summary()["loss_kwh"] <= results["S2"].summary()["loss_kwh"] + 1e-6


@pytest.mark.parametrize("name", ["S2", "S3"])
def test_ac_validation(results, name):
    r = results[name]
    chk = r.ac_check()
    assert chk["max_voltage_mismatch_pu"] < V_TOL
    assert abs(chk["loss_rel_diff"]) < LOSS_TOL
    assert r.opf.max_relaxation_gap_rel < 1e-4
    # every AC voltage within the band (the SOCP enforces it; the AC check confirms it)
    assert r.violations(tol_pu=V_TOL).empty
    v = r.ac.voltages.v_pu
    assert v.min() >= 0.95 - V_TOL and v.max() <= 1.05 + V_TOL


def test_same_energy_and_devices(results, case_data):
    # S0, S2 and S3 see the same base load and renewables; S1 has only the base load
    for name in ("S0", "S2", "S3"):
        d = results[name].dispatch
        assert set(d.device) == {"load", "ev_station", "pv", "wt"}
        np.testing.assert_allclose(d[d.device == "pv"].groupby("hour").p_kw.sum().to_numpy(),
                                   -case_data.pv_avail_kw.sum(axis=0), atol=1e-3)  # solver tolerance [kW]
    assert set(results["S1"].dispatch.device) == {"load"}
    # no reactive power in S2 except the base load
    d2 = results["S2"].dispatch
    assert np.abs(d2.loc[d2.device != "load", "q_kvar"]).max() < 1e-6
    # S3 uses reactive power and respects the inverter circles
    d3 = results["S3"].dispatch
    ren = d3[d3.device.isin(["pv", "wt"])]
    assert np.abs(ren.q_kvar).max() > 1.0
    cap = dict(zip(case_data.case.pv_buses + case_data.case.wt_buses,
                   case_data.case.pv_capacity_kw + case_data.case.wt_capacity_kw))
    s = ren.bus.map(cap) * case_data.case.inverter_kva_ratio
    assert (np.hypot(ren.p_kw, ren.q_kvar) <= s + 1e-3).all()


def test_paper_signs(results):
    comp = report.comparison_table(report.summary_table(results))
    paper = comp.dropna(subset=["paper_pct"])
    assert len(paper) == 5
    assert (np.sign(paper.ours_pct) == np.sign(paper.paper_pct)).all(), paper


def test_results_contract(written):
    s = pd.read_csv(written / "summary.csv")
    assert list(s.columns) == ["scenario", "peak_valley_kw", "peak_valley_substation_kw", "loss_kwh",
                               "voltage_deviation_pu", "vmin_pu", "vmax_pu", "max_loading_pct", "max_relaxation_gap",
                               "max_relaxation_gap_rel", "ac_loss_kwh", "ac_max_voltage_mismatch_pu", "exact",
                               "reservations_not_honoured", "energy_not_delivered_kwh", "curtailment_kwh",
                               "solver"]
    assert s.exact.all()
    assert list(s.scenario) == ["S0", "S1", "S2", "S3"]
    c = pd.read_csv(written / "comparison.csv")
    assert list(c.columns) == ["metric", "comparison", "paper_pct", "ours_pct"]
    got = {(m, k): p for m, k, p in zip(c.metric, c.comparison, c.paper_pct) if not np.isnan(p)}
    assert got == {("peak_valley", "S2 vs S1"): -40.60, ("loss", "S2 vs S1"): -85.19,
                   ("voltage_deviation", "S2 vs S1"): -70.74, ("loss", "S3 vs S2"): -57.00,
                   ("voltage_deviation", "S3 vs S2"): -6.86}
    assert {"S3 vs S0", "S3 vs S1"} <= set(c.comparison)
    for name in ("S0", "S1", "S2", "S3"):
        d = written / "scenarios" / name
        disp = pd.read_csv(d / "dispatch.csv")
        volt = pd.read_csv(d / "voltages.csv")
        br = pd.read_csv(d / "branches.csv")
        assert list(disp.columns) == ["hour", "bus", "device", "p_kw", "q_kvar"]
        assert list(volt.columns) == ["hour", "bus", "v_pu"]
        assert list(br.columns) == ["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw", "loading_pct"]
        assert set(disp.device) <= {"load", "ev_station", "pv", "wt"}
        assert sorted(volt.bus.unique()) == list(range(1, 34))
        assert sorted(volt.hour.unique()) == list(range(24))
        assert len(br) == 32 * 24


def test_s0_s1_are_power_flows(results):
    for name in ("S0", "S1"):
        row = results[name].summary()
        assert row["solver"] == "pandapower" and np.isnan(row["max_relaxation_gap"])
        assert row["loss_kwh"] == pytest.approx(row["ac_loss_kwh"])


def test_dg_scale_multiplies_every_renewable_capacity_of_a_sweep_case(case_data):
    from evsched.sweep import load_spec
    case = load_spec({"grid": {"dg_scale": [2.0]}, "scenarios": ["S2"]}).cases[0].case
    assert case.pv_capacity_kw == [2 * x for x in case_data.case.pv_capacity_kw]
    assert case.wt_capacity_kw == [2 * x for x in case_data.case.wt_capacity_kw]
    assert case_data.case.wt_capacity_kw == [500.0, 500.0]  # the default case is left as it is


@pytest.mark.parametrize("override, message", [
    ({"pv_capacity_kw": [500.0]}, r"'pv_capacity_kw' = \[500.0\]: must give one capacity per bus"),
    ({"wt_capacity_kw": [500.0, -1.0]}, r"'wt_capacity_kw' = \[500.0, -1.0\]: item 2 = -1.0: must be in \[0, 10000\] kW"),
    ({"inverter_kva_ratio": 0.9}, "inverter_kva_ratio"),
    ({"v_min_pu": 1.06}, "v_min_pu"),
    ({"pv_buses": [13, 13]}, "a bus may appear only once"),
    ({"no_such_key": 1}, "unknown case parameter"),
])
def test_bad_case_parameters(override, message):
    with pytest.raises(InputError, match=message):
        load_case(**override)


def test_case_bus_outside_network():
    case = load_case(pv_buses=[13, 40])
    with pytest.raises(InputError, match="'pv_buses'.*bus 40"):
        case.check_network(__import__("evsched").load_ieee33())


def test_dg_scale_sweep_matches_the_scenarios(results, tmp_path):
    # notebook 04's DG-size sensitivity runs on the sweep machinery: its factor-1 rows equal the
    # plain S2/S3 solves, and less DG means more loss
    from evsched.sweep import run_sweep
    spec = {"name": "dg", "grid": {"dg_scale": [0.5, 1.0]}, "scenarios": ["S2", "S3"]}
    sens = run_sweep(spec, out=tmp_path / "dg", workers=0, progress=False, log=lambda m: None)
    sens = sens.set_index(["dg_scale", "scenario"])
    assert (sens.status == "ok").all()
    for name in ("S2", "S3"):
        assert sens.at[(1.0, name), "loss_kwh"] == pytest.approx(results[name].summary()["loss_kwh"], rel=1e-4)
    assert sens.at[(0.5, "S2"), "loss_kwh"] > sens.at[(1.0, "S2"), "loss_kwh"]


def test_stored_scenarios_read_back_and_refuse_other_parameters(results, case_data, tmp_path):
    report.write_results(results, tmp_path, case_data.case)
    back = report.read_scenarios(tmp_path, case_data.case)
    assert list(back) == ["S0", "S1", "S2", "S3"]
    for name, r in results.items():
        assert back[name].loss_kwh == pytest.approx(r.loss_kwh, rel=1e-5)   # CSVs keep 6 significant digits
        assert back[name].dt_h == 1.0
    other = case_data.case.model_copy(update={"v_min_pu": 0.94})
    with pytest.raises(InputError, match="other parameters"):
        report.read_scenarios(tmp_path, other)
    with pytest.raises(InputError, match="run notebook 04"):
        report.read_scenarios(tmp_path / "nothing")
