"""Station aggregation: the worked example, the outer-approximation property, tightness of the
per-EV bounds, the midnight handover, uncontrolled charging, StorageGroups and the OPF gap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsched.aggregation import aggregate, exact_storage_group, station_incidence, uncontrolled_station_demand
from evsched.disaggregation import verify
from evsched.fleet import generate_fleet
from evsched.reservations import validate_reservations
from evsched.sessions import build_sessions, uncontrolled_charging

from ev_strategies import STATIONS, fleets, frame, good_row, random_feasible_schedules

TOL = 1e-6


def worked_example():
    """The module docstring's example: B = 100 kWh, η = 1, 10 kW, charge only."""
    common = dict(station=14, bus=14, departure_day=0, mode="charge", battery_kwh=100.0,
                  soc_min=0.0, soc_max=0.2, charger_kw=10.0, charger_kva=10.0, efficiency=1.0)
    a = dict(common, ev_id="A", arrival_hour=0, departure_hour=2, soc_arrival=0.0, soc_departure_min=0.1)
    b = dict(common, ev_id="B", arrival_hour=1, departure_hour=3, soc_arrival=0.05, soc_departure_min=0.1)
    return frame(a, b)


def test_worked_example_numbers():
    s = build_sessions(worked_example())
    assert s.energy_min_kwh[0, :3].tolist() == [0, 10, 10]
    assert s.energy_max_kwh[0, :3].tolist() == [10, 20, 20]
    assert s.energy_min_kwh[1, :3].tolist() == [0, 0, 5]
    assert s.energy_max_kwh[1, :3].tolist() == [0, 10, 15]
    env = aggregate(s)
    assert env.stations.tolist() == [14]
    np.testing.assert_allclose(env.energy_min_kwh[0, :4], [0, 10, 15, 15])
    np.testing.assert_allclose(env.energy_max_kwh[0, :4], [10, 30, 35, 35])
    np.testing.assert_allclose(env.energy_max_kwh[0, -1], 35)  # frozen after departures
    np.testing.assert_allclose(env.p_charge_max_kw[0, :4], [10, 20, 10, 0])
    np.testing.assert_allclose(env.p_discharge_max_kw[0], 0)
    np.testing.assert_allclose(env.n_connected[0, :4], [1, 2, 1, 0])


def test_fractional_hours_scale_power_by_presence():
    r = frame(good_row(arrival_hour=18.25, departure_hour=7.5))
    s = build_sessions(r)
    assert list(s.kind) == ["evening", "morning"]
    np.testing.assert_allclose(s.presence[0, 17:20], [0, 0.75, 1])
    np.testing.assert_allclose(s.presence[1, 6:9], [1, 0.5, 0])
    np.testing.assert_allclose(s.p_charge_max_kw[0, 18], 7 * 0.75)
    np.testing.assert_allclose(s.s_max_kva[1, 7], 7.7 * 0.5)


def test_midnight_handover_is_pro_rata_and_energy_continuous():
    r = frame(good_row(arrival_hour=18, departure_hour=6, mode="charge"))  # 6 h + 6 h
    s = build_sessions(r)
    e_a, e_dep = 25.0, 40.0
    e_mid = e_a + (e_dep - e_a) * 6 / 12
    ev, mo = 0, 1
    assert s.target_min_kwh[ev] == pytest.approx(e_mid - e_a) == s.target_max_kwh[ev]
    assert s.e0_kwh[mo] == pytest.approx(e_mid)
    assert s.target_min_kwh[mo] == pytest.approx(e_dep - e_mid)
    # discharge-only: the evening must come back to its arrival energy
    r2 = frame(good_row(mode="discharge", soc_departure_min=0.4, soc_min=0.3))
    s2 = build_sessions(r2)
    assert s2.target_min_kwh[0] == 0 == s2.target_max_kwh[0]


def _check_inside_envelope(s, env, pc, pdis):
    A = station_incidence(s, env.stations)
    x = np.cumsum(s.eta[:, None] * pc - pdis / s.eta[:, None], axis=1)
    E = A @ x
    assert np.all(E >= env.energy_min_kwh - TOL) and np.all(E <= env.energy_max_kwh + TOL)
    assert np.all(A @ pc <= env.p_charge_max_kw + TOL)
    assert np.all(A @ pdis <= env.p_discharge_max_kw + TOL)
    assert np.all(np.abs(A @ (pc - pdis)) <= env.s_max_kva + TOL)
    # the per-session bounds hold as well (they are what is summed)
    assert np.all(x >= s.energy_min_kwh - TOL) and np.all(x <= s.energy_max_kwh + TOL)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(max_size=8), seed=st.integers(0, 10 ** 6))
def test_sum_of_feasible_individual_schedules_lies_in_the_envelope(ieee33, fleet, seed):
    assert validate_reservations(fleet, ieee33, STATIONS, on_error="skip").ok
    s = build_sessions(fleet)
    env = aggregate(s, stations=STATIONS)
    pc, pdis = random_feasible_schedules(s, np.random.default_rng(seed))
    rep = verify(s, pc, pdis)
    assert rep["honoured"].all(), rep[~rep["honoured"]]
    _check_inside_envelope(s, env, pc, pdis)


@settings(max_examples=40, deadline=None)
@given(fleet=fleets(max_size=6))
def test_envelope_bounds_are_attained(fleet):
    """Each session's lower and upper bound trajectory is itself feasible, so E_min and E_max
    are the tightest per-hour bounds (exact projections of the individual sets)."""
    s = build_sessions(fleet)
    for x in (s.energy_min_kwh, s.energy_max_kwh):
        dx = np.diff(x, axis=1, prepend=0.0)
        up = np.maximum(dx, 0) / s.eta[:, None]       # grid-side charge power needed
        down = np.maximum(-dx, 0) * s.eta[:, None]    # grid-side discharge power needed
        assert np.all(up <= s.p_charge_max_kw + TOL) and np.all(down <= s.p_discharge_max_kw + TOL)
        assert np.all(x >= s.soc_box_min_kwh[:, None] - TOL) and np.all(x <= s.soc_box_max_kwh[:, None] + TOL)
        assert np.all(x[:, -1] >= s.target_min_kwh - TOL) and np.all(x[:, -1] <= s.target_max_kwh + TOL)
        rep = verify(s, up, down)
        assert rep["honoured"].all(), rep[~rep["honoured"]]


def test_default_envelope_frame_and_counts(ieee33):
    f = generate_fleet(ieee33)
    env = aggregate(build_sessions(f), stations=(14, 22, 30))
    tab = env.frame()
    assert len(tab) == 72 and (tab["energy_min_kwh"] <= tab["energy_max_kwh"] + TOL).all()
    assert env.n_reservations.tolist() == [88, 217, 195]
    # power limit = 7 kW × EVs plugged in; discharge only from V2G EVs
    np.testing.assert_allclose(env.p_charge_max_kw, 7 * env.n_connected - _n_disc_only(f, env), atol=1e-9)
    assert np.all(env.p_discharge_max_kw <= env.p_charge_max_kw + 7 * env.n_connected)
    # a station with no reservations gets zero bounds
    env4 = aggregate(build_sessions(f), stations=(14, 22, 30, 5))
    assert np.all(env4.p_charge_max_kw[0] == 0) and env4.stations.tolist() == [5, 14, 22, 30]


def _n_disc_only(f, env):
    s = build_sessions(f)
    A = station_incidence(s, env.stations)
    return 7 * (A @ (s.presence * (s.mode == "discharge")[:, None]))


def test_storage_groups_for_the_optimiser(ieee33):
    s = build_sessions(generate_fleet(ieee33, n_evs=40))
    env = aggregate(s, stations=(14, 22, 30))
    g = env.storage_group()
    assert g.n == 3 and g.T == 24 and not g.reactive
    np.testing.assert_allclose(g.energy_initial_kwh, 0)
    gr = env.storage_group(reactive=True)
    assert gr.reactive and gr.s_max_kva.shape == (3, 24)
    ge = exact_storage_group(s, reactive=True)
    assert ge.n == s.n and list(ge.buses) == list(s.station)


def test_uncontrolled_charging_meets_the_need_at_full_power_from_arrival(ieee33):
    r = frame(good_row(ev_id="N", arrival_hour=18, departure_hour=7, mode="charge"),  # 15 kWh
              good_row(ev_id="D", arrival_hour=8, departure_hour=17, departure_day=0,
                       mode="discharge", soc_departure_min=0.4),
              good_row(ev_id="F", arrival_hour=22.5, departure_hour=8, soc_arrival=0.2))
    p = uncontrolled_charging(r)
    eta = 0.95
    np.testing.assert_allclose(p.sum(axis=1) * eta, [15.0, 0.0, 30.0])
    assert p[0, 18] == pytest.approx(7) and p[0, 19] == pytest.approx(7) and p[0, 17] == 0
    assert p[0, 20] == pytest.approx(15 / eta - 14)  # the rest in the third hour
    assert p[2, 22] == pytest.approx(3.5) and p[2, 23] == pytest.approx(7)  # half hour, then full
    # 30 kWh from 22:30: 3.325 + 4 × 6.65 = 29.925 kWh by 03:00, the last 0.075 kWh in hour 3
    np.testing.assert_allclose(p[2, :4], [7, 7, 7, 0.075 / eta])
    assert np.all(p[2, 4:22] == 0)
    assert p[2, 0:4].sum() + p[2, 22:].sum() == pytest.approx(30 / eta)  # wraps past midnight
    full = uncontrolled_charging(r, target="full")
    np.testing.assert_allclose(full.sum(axis=1) * eta, [20.0, 0.0, 35.0])
    busp = uncontrolled_station_demand(r, ieee33)
    assert busp.shape == (33, 24)
    np.testing.assert_allclose(busp[ieee33.bus_index([14])[0]], p.sum(axis=0))
    assert busp.sum() == pytest.approx(p.sum())


@pytest.mark.parametrize("reactive", [False, True])
def test_aggregated_loss_never_above_exact_loss(ieee33, daily_shape, reactive):
    """The aggregate relaxes the exact per-EV model: its optimal loss is lower or equal, and the
    exact model's per-EV schedule honours every reservation."""
    from evsched.aggregation_gap import compare
    p, q = ieee33.nominal_load()
    fleet = generate_fleet(ieee33, n_evs=60, fleet_seed=7, v2g_share=0.5)
    out = compare(ieee33, fleet, p[:, None] * daily_shape, q[:, None] * daily_shape,
                  reactive=reactive, v_min_pu=0.90, solver="CLARABEL")
    assert out["loss_aggregated_kwh"] <= out["loss_exact_kwh"] + 1e-3
    assert out["exact_not_honoured"] == 0
    assert 0 <= out["failure_rate"] <= 1 and out["max_deviation_kw"] < 1e-3


def test_time_sharing_keeps_the_exact_schedule_physical_under_surplus(ieee33, daily_shape):
    """With a must-take injection larger than the local load the OPF likes to burn energy by
    charging and discharging at once; the time-sharing family forbids it per charger, and the
    exact per-EV schedule then passes every reservation check."""
    from evsched.aggregation_gap import compare
    from evsched.model import DeviceGroup
    p, q = ieee33.nominal_load()
    pv = DeviceGroup("pv", [30], -1500.0 * np.ones((1, 24)), -1500.0 * np.ones((1, 24)), kind="pv")
    fleet = generate_fleet(ieee33, n_evs=40, fleet_seed=3, v2g_share=1.0)
    out = compare(ieee33, fleet, p[:, None] * daily_shape, q[:, None] * daily_shape,
                  v_min_pu=0.90, v_max_pu=1.10, solver="CLARABEL", extra_devices=[pv])
    assert out["exact_not_honoured"] == 0
    env = out["envelopes"]
    st = out["result_aggregated"].storage
    both = (st["p_charge_kw"] + st["p_discharge_kw"]).to_numpy().reshape(-1)
    lim = pd.DataFrame({"bus": np.repeat(env.stations, 24), "hour": np.tile(np.arange(24), len(env.stations)),
                        "lim": env.p_total_max_kw.ravel()})
    merged = st.merge(lim, on=["bus", "hour"])
    assert np.all(merged["p_charge_kw"] + merged["p_discharge_kw"] <= merged["lim"] + 1e-3)
    assert len(both) == 24 * len(env.stations)
