"""The time step (run parameter ``resolution_min``: 60 or 15): energy accounting with the right
Δt, a 15-minute forecast that averages exactly to the hourly one, one TOU tariff in whole
clock hours, reservations on a quarter-hour grid verified per EV, and the 96-step OPF
certified (cone gap + AC power flow) with every reservation honoured."""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsched import forecast, metrics, report, scenarios
from evsched.aggregation import aggregate, station_incidence
from evsched.case import build_case, load_case
from evsched.disaggregation import disaggregate, verify
from evsched.errors import InputError
from evsched.reservations import validate_reservations
from evsched.sessions import build_sessions, stay_presence, step_hours, steps_per_day, uncontrolled_charging
from evsched.tou import hourly_curve, tou_on_grid, tou_table

from ev_strategies import STATIONS, fleets, frame, good_row

TARGET = "2016-12-07"
QUARTER = 0.25


def quarters_to_hours(a: np.ndarray) -> np.ndarray:
    """Mean of each hour's four quarter-hours along the last axis (…, 96) → (…, 24)."""
    return a.reshape(*a.shape[:-1], 24, 4).mean(axis=-1)


# --- the time grid ----------------------------------------------------------------------------
def test_time_grid_labels_each_step_by_its_start_hour():
    assert steps_per_day(1.0) == 24 and steps_per_day(QUARTER) == 96
    h = step_hours(1.0)
    assert h.dtype.kind == "i" and h.tolist() == list(range(24))   # hourly labels unchanged
    q = step_hours(QUARTER)
    assert q[:5].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and q[-1] == 23.75
    for bad in (0.3, 0.0, -1.0, 2.0):
        with pytest.raises(InputError, match="must divide one hour"):
            steps_per_day(bad)


def test_resolution_parameter_is_validated():
    assert load_case().resolution_min == 60 and load_case(resolution_min=15).resolution_min == 15
    with pytest.raises(InputError, match=r"field 'resolution_min' = 30: must be one of 60, 15"):
        load_case(resolution_min=30)


# --- energy accounting ------------------------------------------------------------------------
def test_a_constant_100_kw_over_a_day_is_2400_kwh_at_both_resolutions():
    assert metrics.energy_kwh(np.full(24, 100.0), 1.0) == pytest.approx(2400.0, abs=1e-9)
    assert metrics.energy_kwh(np.full(96, 100.0), QUARTER) == pytest.approx(2400.0, abs=1e-9)
    for dt in (1.0, QUARTER):
        hours = step_hours(dt)
        br = pd.DataFrame({"hour": hours, "from_bus": 1, "to_bus": 2, "loss_kw": 100.0})
        assert metrics.step_length_h(br["hour"]) == dt
        assert metrics.loss_kwh(br, dt) == pytest.approx(2400.0, abs=1e-9)
        # Γ: |V − 1| = 0.01 p.u. at one bus all day is 0.24 p.u.·h at any step
        v = pd.DataFrame({"hour": hours, "bus": 2, "v_pu": 0.99})
        assert metrics.voltage_deviation(v, dt) == pytest.approx(0.24, abs=1e-12)


def quarter_hour_ev(**changes) -> pd.DataFrame:
    """One EV plugged in 18:00-18:15 at a 7 kW charger, η = 0.95 (needs 1.5 of the 1.6625 kWh
    the quarter can deliver)."""
    row = good_row(arrival_hour=18.0, departure_hour=18.25, departure_day=0, mode="charge",
                   battery_kwh=50.0, soc_arrival=0.5, soc_departure_min=0.53, soc_min=0.3, soc_max=0.9)
    row.update(changes)
    return frame(row)


def test_a_7_kw_charger_for_15_minutes_adds_1_75_kwh_times_eta(ieee33):
    ev = validate_reservations(quarter_hour_ev(), ieee33, STATIONS, source="test").accepted
    eta = 0.95
    # uncontrolled charging to the SOC ceiling: full power for the quarter-hour, at both steps
    p15 = uncontrolled_charging(ev, target="full", dt_h=QUARTER)
    assert p15.shape == (1, 96) and p15[0, 72] == pytest.approx(7.0) and np.count_nonzero(p15) == 1
    assert metrics.energy_kwh(p15, QUARTER) * eta == pytest.approx(1.75 * eta)
    p60 = uncontrolled_charging(ev, target="full")
    assert p60[0, 18] == pytest.approx(1.75)   # the hour's average power: the same energy
    assert metrics.energy_kwh(p60, 1.0) == pytest.approx(metrics.energy_kwh(p15, QUARTER))
    # the session's limits: presence 1 in the quarter, 1/4 of the hour on the hourly grid
    s15, s60 = build_sessions(ev, dt_h=QUARTER), build_sessions(ev)
    assert s15.presence[0, 72] == 1.0 and s15.presence.sum() == 1.0 and s60.presence[0, 18] == 0.25
    assert s15.energy_max_kwh[0, -1] == pytest.approx(1.75 * eta) == s60.energy_max_kwh[0, -1]
    # the verification integrates with Δt = 15 min: 0.5 + 1.6625/50 on departure
    rep = verify(s15, p15, np.zeros_like(p15))
    assert bool(rep.honoured.iloc[0]) and rep.soc_departure.iloc[0] == pytest.approx(0.5 + 1.75 * eta / 50)


def test_per_ev_verification_at_15_minutes_names_each_broken_rule(ieee33):
    # plugged in 17:45-19:30 (7 steps), needs 0.1·50 = 5 kWh: 3 quarters at 7 kW give 4.99 kWh
    ev = validate_reservations(quarter_hour_ev(arrival_hour=17.75, departure_hour=19.5, soc_departure_min=0.6),
                               ieee33, STATIONS, source="test").accepted
    s = build_sessions(ev, dt_h=QUARTER)
    assert s.presence[0, 71:78].tolist() == [1.0] * 7 and s.presence.sum() == 7
    pc = np.zeros((1, 96))
    pc[0, 71:74] = 7.0
    short = verify(s, pc, np.zeros_like(pc)).iloc[0]
    assert not short.honoured and short.reason == "departure energy below soc_departure_min"
    assert short.shortfall_kwh == pytest.approx(5.0 - 3 * 7 * QUARTER * 0.95)
    pc[0, 74] = 0.1  # a trickle in a fourth quarter: 4.9875 + 0.02375 kWh ≥ 5 kWh
    assert verify(s, pc, np.zeros_like(pc)).iloc[0].honoured
    early = pc.copy()
    early[0, 70] = 1.0                                            # 17:30: not plugged in yet
    assert verify(s, early, np.zeros_like(pc)).iloc[0].reason.startswith("power above charger rating")


def test_overnight_stay_on_the_quarter_hour_grid_is_verified_over_the_whole_stay(ieee33):
    ev = validate_reservations(quarter_hour_ev(arrival_hour=23.5, departure_hour=0.75, departure_day=1,
                                               soc_departure_min=0.6), ieee33, STATIONS, source="test").accepted
    s = build_sessions(ev, dt_h=QUARTER)
    assert s.kind.tolist() == ["evening", "morning"]
    assert s.presence[0].nonzero()[0].tolist() == [94, 95] and s.presence[1].nonzero()[0].tolist() == [0, 1, 2]
    F = stay_presence(ev, dt_h=QUARTER)
    assert F.shape == (1, 192) and F.sum() * QUARTER == pytest.approx(1.25)
    pc = np.zeros((2, 96))
    pc[0, 94:96] = 7.0   # 23:30-24:00
    pc[1, 0:2] = 7.0     # 00:00-00:30: 4 quarters, 6.65 kWh ≥ the 5 kWh needed
    rep = verify(s, pc, np.zeros_like(pc)).iloc[0]
    assert rep.honoured and rep.soc_departure == pytest.approx(0.5 + 4 * 7 * QUARTER * 0.95 / 50)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(max_size=6), seed=st.integers(0, 10 ** 6))
def test_feasible_quarter_hour_schedules_are_honoured_and_split_without_failure(fleet, seed):
    """Random per-EV schedules feasible on the 15-minute grid (an LP vertex of a random
    objective, energies with Δt) pass the independent verification, their sum lies in the
    station envelope, and the split of that sum honours every reservation."""
    s = build_sessions(fleet, dt_h=QUARTER)
    S, T = s.presence.shape
    assert T == 96
    pc, pdis = cp.Variable((S, T), nonneg=True), cp.Variable((S, T), nonneg=True)
    eta = s.eta[:, None]
    x = cp.cumsum(cp.multiply(eta * QUARTER, pc) - cp.multiply(QUARTER / eta, pdis), axis=1)
    rng = np.random.default_rng(seed)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(rng.normal(size=(S, T)), pc))
                                  + cp.sum(cp.multiply(rng.normal(size=(S, T)), pdis))),
                      [pc <= s.p_charge_max_kw, pdis <= s.p_discharge_max_kw,
                       pc + pdis <= s.charger_kw[:, None] * s.presence,
                       x >= s.energy_min_kwh, x <= s.energy_max_kwh])
    prob.solve(solver="HIGHS")
    assert prob.status == cp.OPTIMAL
    pcv, pdv = np.maximum(pc.value, 0), np.maximum(pdis.value, 0)
    assert verify(s, pcv, pdv, tol_kw=1e-6, tol_kwh=1e-6).honoured.all()
    env = aggregate(s, stations=STATIONS)
    A = station_incidence(s, np.array(STATIONS))
    E = np.cumsum(A @ (s.eta[:, None] * pcv - pdv / s.eta[:, None]), axis=1) * QUARTER
    assert np.all(E >= env.energy_min_kwh - 1e-6) and np.all(E <= env.energy_max_kwh + 1e-6)
    d = disaggregate(s, A @ (pcv - pdv), STATIONS)
    assert d.n_not_honoured == 0, d.not_honoured()
    assert d.max_deviation_kw < 1e-5
    assert d.schedule()["hour"].max() == 23.75


def test_whole_hour_reservations_give_the_same_envelope_at_every_hour_end():
    """For whole-hour reservations each quarter carries its hour's presence, and the reachable
    energy at an hour's end does not depend on the step: the 15-minute envelope at 0:45, 1:45,
    ... equals the hourly one."""
    from evsched.fleet import generate_fleet
    from evsched.network import load_ieee33

    fleet = generate_fleet(load_ieee33(), n_evs=200)
    s60, s15 = build_sessions(fleet), build_sessions(fleet, dt_h=QUARTER)
    assert np.array_equal(quarters_to_hours(s15.presence), s60.presence)
    for a, b in ((s15.energy_min_kwh, s60.energy_min_kwh), (s15.energy_max_kwh, s60.energy_max_kwh)):
        np.testing.assert_allclose(a[:, 3::4], b, atol=1e-9)
    e15, e60 = aggregate(s15, STATIONS), aggregate(s60, STATIONS)
    np.testing.assert_allclose(quarters_to_hours(e15.p_charge_max_kw), e60.p_charge_max_kw, atol=1e-9)
    np.testing.assert_allclose(e15.energy_max_kwh[:, 3::4], e60.energy_max_kwh, atol=1e-9)
    assert e15.frame()["hour"].iloc[1] == 0.25 and e60.frame()["hour"].dtype.kind == "i"


# --- forecast and TOU -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def day_ahead_both():
    return forecast.day_ahead(TARGET), forecast.day_ahead(TARGET, resolution_min=15)


def test_the_15_minute_forecast_averages_to_the_hourly_forecast(day_ahead_both):
    h, q = day_ahead_both
    assert len(q.load) == 4 * len(h.load) and sorted(q.load.hour.unique())[:2] == [0.0, 0.25]
    for col in ("p_kw", "q_kvar"):
        ph = h.load.pivot(index="bus", columns="hour", values=col).to_numpy()
        pq = q.load.pivot(index="bus", columns="hour", values=col).to_numpy()
        np.testing.assert_allclose(quarters_to_hours(pq), ph, rtol=1e-12, atol=1e-9)
        assert (pq >= 0).all()
    rh = h.renewables.pivot(index="site", columns="hour", values="availability_pu").to_numpy()
    rq = q.renewables.pivot(index="site", columns="hour", values="availability_pu").to_numpy()
    np.testing.assert_allclose(quarters_to_hours(rq), rh, rtol=1e-12, atol=1e-12)
    assert rq.min() >= 0 and rq.max() <= 1
    # the quarter-hours carry intra-hour detail (not the hourly value four times)
    feeder = q.feeder.p_kw.to_numpy().reshape(24, 4)
    assert np.abs(feeder - feeder.mean(axis=1, keepdims=True)).max() > 1.0
    assert np.abs(rq.reshape(len(rq), 24, 4).std(axis=2)).max() > 1e-3


def test_the_15_minute_forecast_does_not_peek_at_the_target_day():
    hist = forecast.default_history()
    d = hist.index_of(TARGET)
    base = forecast.forecast_bus_load(TARGET, history=hist, resolution_min=15)
    ren = forecast.forecast_renewables(TARGET, history=hist, resolution_min=15)
    load15, ren15 = hist.load_15min.copy(), hist.renewables_15min.copy()
    load15[d:] *= 3.0
    ren15[d:] = 1.0 - ren15[d:]
    import dataclasses
    poked = dataclasses.replace(hist, load_15min=load15, renewables_15min=ren15)
    pd.testing.assert_frame_equal(forecast.forecast_bus_load(TARGET, history=poked, resolution_min=15), base)
    pd.testing.assert_frame_equal(forecast.forecast_renewables(TARGET, history=poked, resolution_min=15), ren)


def test_intra_hour_shape_keeps_each_hour_mean_and_sign():
    rng = np.random.default_rng(1)
    hourly = rng.uniform(0, 2, size=(24, 3))
    shape = np.column_stack([rng.uniform(0, 1, 96),              # positive: multiplicative
                             np.zeros(96),                        # zero mean: additive, + 0
                             rng.normal(size=96)])                # signed: additive
    out = forecast.intra_hour(hourly, shape)
    np.testing.assert_allclose(quarters_to_hours(out.T).T, hourly, atol=1e-12)
    assert (out[:, 0] >= 0).all() and np.allclose(out[:, 1], np.repeat(hourly[:, 1], 4))


def test_tou_stays_in_whole_clock_hours(day_ahead_both):
    h, q = day_ahead_both
    th, tq = tou_table(h.feeder.p_kw.to_numpy()), tou_table(q.feeder.p_kw.to_numpy())
    pd.testing.assert_frame_equal(th, tq)
    assert tq.hour.tolist() == list(range(24))
    np.testing.assert_allclose(hourly_curve(q.feeder.p_kw.to_numpy()), h.feeder.p_kw.to_numpy(), rtol=1e-12)
    grid = tou_on_grid(th, QUARTER)
    assert len(grid) == 96 and grid.hour.iloc[73] == 18.25
    assert grid.period.iloc[72:76].nunique() == 1 and grid.period.iloc[72] == th.period.iloc[18]


# --- the whole case at 15 minutes -------------------------------------------------------------
@pytest.fixture(scope="module")
def cases():
    return build_case(load_case()), build_case(load_case(resolution_min=15))


def test_the_15_minute_case_is_the_hourly_case_on_a_finer_grid(cases):
    c60, c15 = cases
    assert (c60.T, c60.dt_h, c15.T, c15.dt_h) == (24, 1.0, 96, QUARTER)
    assert c60.hours.dtype.kind == "i" and c15.hours[1] == 0.25
    pd.testing.assert_frame_equal(c60.tou, c15.tou)                   # one tariff
    pd.testing.assert_frame_equal(c60.reservations, c15.reservations)  # the same fleet
    for a, b in ((c15.load_p_kw, c60.load_p_kw), (c15.load_q_kvar, c60.load_q_kvar),
                 (c15.pv_avail_kw, c60.pv_avail_kw), (c15.wt_avail_kw, c60.wt_avail_kw)):
        np.testing.assert_allclose(quarters_to_hours(a), b, rtol=1e-12, atol=1e-9)
    # the same energies: base load, renewables, the stations' daily need
    assert metrics.energy_kwh(c15.load_p_kw, c15.dt_h) == pytest.approx(metrics.energy_kwh(c60.load_p_kw), rel=1e-12)
    pd.testing.assert_frame_equal(c15.device_table(), c60.device_table(), rtol=1e-9)
    # uncontrolled charging (S0) delivers the same energy per EV at both steps
    u60 = uncontrolled_charging(c60.reservations)
    u15 = uncontrolled_charging(c15.reservations, dt_h=QUARTER)
    np.testing.assert_allclose(u15.sum(axis=1) * QUARTER, u60.sum(axis=1), atol=1e-9)


@pytest.mark.slow
def test_the_96_step_opf_is_certified_and_honours_every_reservation(cases, tmp_path):
    _, cd = cases
    results = {name: scenarios.run_scenario(name, cd) for name in scenarios.SCENARIOS}
    for name in ("S2", "S3"):
        r = results[name]
        assert r.voltages.hour.nunique() == 96 and r.dt_h == QUARTER
        assert r.exact, r.verdict()
        assert r.opf.max_relaxation_gap_rel <= 1e-5
        chk = r.ac_check()
        assert chk["max_voltage_mismatch_pu"] <= 1e-4 and abs(chk["loss_rel_diff"]) <= 0.005
        assert r.reservations["honoured"].all() and len(r.reservations) == len(cd.reservations)
        assert r.voltages.v_pu.min() >= cd.case.v_min_pu - 1e-6
        # ζ = Δt Σ loss_kw, in kWh
        assert r.loss_kwh == pytest.approx(r.branches.loss_kw.sum() * QUARTER, rel=1e-12)
    # S0 draws exactly each charging EV's need / η from the grid (energy with Δt = 15 min)
    r = cd.reservations
    need = ((r.soc_departure_min - r.soc_arrival).clip(lower=0) * r.battery_kwh / r.efficiency)[r["mode"] != "discharge"]
    s0 = metrics.energy_kwh(results["S0"].dispatch.query("device == 'ev_station'").p_kw, QUARTER)
    assert s0 == pytest.approx(float(need.sum()), rel=1e-9)
    # results tables: the same files, `hour` the step's start as a decimal
    report.write_results(results, tmp_path, cd.case)
    dispatch = pd.read_csv(tmp_path / "scenarios" / "S3" / "dispatch.csv")
    assert sorted(dispatch.hour.unique())[:3] == [0.0, 0.25, 0.5]
    back = report.read_scenarios(tmp_path, cd.case)
    assert back["S3"].dt_h == QUARTER
    assert back["S3"].loss_kwh == pytest.approx(results["S3"].loss_kwh, rel=1e-5)
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("scenario")
    assert summary.loc[["S2", "S3"], "exact"].all()
    assert (summary.loc[["S2", "S3"], "reservations_not_honoured"] == 0).all()


def test_a_notebook_may_declare_the_time_steps_it_is_written_for(tmp_path):
    import json

    from evsched import run_study

    nb = tmp_path / "x.ipynb"
    for meta, expect in (({"evsched": {"networks": ["ieee33"], "resolutions": [60]}}, [60]),
                         ({"evsched": {"networks": ["ieee33"]}}, None), ({}, None)):
        nb.write_text(json.dumps({"cells": [], "metadata": meta}))
        assert run_study.notebook_scope(nb).get("resolution_min") == expect


# --- hours in messages and hand-offs ----------------------------------------------------------
def test_hour_labels_print_as_plain_numbers():
    from evsched.sessions import hour_label
    assert [hour_label(h) for h in (np.float64(18.0), np.float64(18.25), np.int64(3), 0.75)] == [18, 18.25, 3, 0.75]
    assert str([hour_label(h) for h in step_hours(QUARTER)[72:74]]) == "[18, 18.25]"
    assert hour_label("09:00") == "09:00"


def test_infeasible_quarter_hour_is_named_by_its_start_hour(ieee33):
    """The elastic diagnosis names the step by its start hour (18.25), not its row (1) nor a
    NumPy repr (np.float64(18.25))."""
    from evsched.errors import OptimisationError
    from evsched.model import OPFModel
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, np.c_[0.5 * p, 1.6 * p], np.c_[0.5 * q, 1.6 * q], v_min_pu=0.95,
                 dt_h=QUARTER, hours=step_hours(QUARTER)[72:74])
    with pytest.raises(OptimisationError) as err:
        m.solve()
    msg = str(err.value)
    assert "hour(s) [18.25]" in msg and "at bus 18, hour 18.25" in msg and "np." not in msg


def test_inexactness_report_names_quarter_hours():
    from evsched.model.result import OPFResult
    empty = pd.DataFrame()
    gap = pd.DataFrame({"hour": np.array([18.0, 18.25, 18.25, 3.0]), "from_bus": [1, 1, 2, 5],
                        "to_bus": [2, 2, 3, 6], "gap_pu2": [1e-2, 2e-2, 1e-9, 1e-3]})
    r = OPFResult(voltages=empty, branches=empty, dispatch=empty, storage=empty, relaxation_gap=gap,
                  net_demand=empty, objective=0.0, solver="x", status="optimal", solve_seconds=0.0,
                  solver_seconds=0.0, dt_h=QUARTER, max_relaxation_gap=2e-2, max_relaxation_gap_rel=2e-2,
                  meta={"gap_scale": 1.0})
    msg = r.inexactness_report()
    assert "on 3 branch-hour(s): hours [3, 18, 18.25]" in msg and "np." not in msg


def test_backtest_error_band_on_the_quarter_hour_grid():
    """The hourly backtest's error band applies to each quarter-hour of its clock hour, so it
    merges with a 15-minute forecast on ``hour``."""
    detail = forecast.backtest(TARGET, days=60)
    hourly = forecast.error_band(detail, "ridge")
    quarter = forecast.error_band(detail, "ridge", resolution_min=15)
    assert hourly.hour.tolist() == list(range(24)) and len(quarter) == 96
    assert quarter.hour.tolist() == step_hours(QUARTER).tolist()
    for col in ("lo_pu", "hi_pu"):
        np.testing.assert_array_equal(quarter[col].to_numpy().reshape(24, 4), np.repeat(hourly[[col]].to_numpy(), 4, axis=1))
    fc = forecast.day_ahead(TARGET, resolution_min=15).feeder
    assert len(fc.merge(quarter, on="hour")) == 96
