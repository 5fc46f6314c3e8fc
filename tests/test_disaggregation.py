"""Disaggregation and verification: a hand case where the aggregate over-promises, property
tests against an independent per-EV re-check, and each verification rule on its own."""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evsched.aggregation import aggregate, station_incidence
from evsched.disaggregation import disaggregate, station_net_from_result, verify
from evsched.sessions import build_sessions

from ev_strategies import STATIONS, fleets, frame, good_row, random_feasible_schedules


def over_promise():
    """A (plugged 0-1 h, needs nothing, 7 kWh of room) and B (plugged 0-2 h, needs 14 kWh =
    2 h at full power); η = 1. The envelope allows 14 kW at hour 0 and nothing at hour 1
    (E = [14, 14] ∈ [7..14] × [14..21]), but B cannot charge 14 kWh in one hour."""
    common = dict(station=14, bus=14, departure_day=0, mode="charge", battery_kwh=100.0,
                  soc_min=0.0, charger_kw=7.0, charger_kva=7.0, efficiency=1.0, arrival_hour=0)
    a = dict(common, ev_id="A", departure_hour=1, soc_arrival=0.5, soc_departure_min=0.5, soc_max=0.6)
    b = dict(common, ev_id="B", departure_hour=2, soc_arrival=0.3, soc_departure_min=0.44, soc_max=0.9)
    return frame(a, b)


def test_envelope_over_promises_and_the_ev_is_reported():
    s = build_sessions(over_promise())
    env = aggregate(s)
    P = np.zeros((1, 24))
    P[0, 0] = 14.0
    E = np.cumsum(P, axis=1)
    assert np.all(E >= env.energy_min_kwh - 1e-9) and np.all(E <= env.energy_max_kwh + 1e-9)
    assert np.all(P <= env.p_charge_max_kw)
    d = disaggregate(s, P, env.stations)
    assert d.max_deviation_kw < 1e-6                     # the grid's schedule is followed ...
    bad = d.not_honoured()
    assert bad["ev_id"].tolist() == ["B"]                # ... and B is reported
    assert bad.loc[0, "reason"] == "departure energy below soc_departure_min"
    assert bad.loc[0, "shortfall_kwh"] == pytest.approx(7.0, abs=1e-6)
    assert d.failure_rate == 0.5
    # reservations first: everyone honoured, the station deviates by 7 kWh at hour 1
    d2 = disaggregate(s, P, env.stations, priority="evs")
    assert d2.n_not_honoured == 0
    assert np.abs(d2.deviation_kw).sum() == pytest.approx(7.0, abs=1e-6)
    assert d2.deviation_kw[0, 1] == pytest.approx(7.0, abs=1e-6)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(max_size=8), seed=st.integers(0, 10 ** 6))
def test_a_sum_of_feasible_schedules_is_always_split_without_failure(fleet, seed):
    s = build_sessions(fleet)
    pc, pdis = random_feasible_schedules(s, np.random.default_rng(seed))
    A = station_incidence(s, np.array(STATIONS))
    d = disaggregate(s, A @ (pc - pdis), STATIONS)
    assert d.n_not_honoured == 0, d.not_honoured()
    assert d.max_deviation_kw < 1e-5


def reference_check(res: pd.Series, first: tuple, morning: tuple | None, tol=1e-3) -> bool:
    """Hour-by-hour re-check of one reservation over its whole stay (loops; independent of
    :func:`verify`). ``first``/``morning`` are (p_ch, p_dis) rows of its sessions."""
    a = res.arrival_hour
    e = a + res.departure_hour + 24 * res.departure_day - a
    B, eta, P = res.battery_kwh, res.efficiency, res.charger_kw
    E = res.soc_arrival * B
    floor, ceil = min(res.soc_min, res.soc_arrival) * B, max(res.soc_max, res.soc_arrival) * B
    for h in range(48):
        pc, pdis = (first if h < 24 else morning or (np.zeros(24), np.zeros(24)))
        c, d = pc[h % 24], pdis[h % 24]
        frac = max(0.0, min(e, h + 1) - max(a, h))
        if c < -tol or d < -tol or c + d > P * frac + tol:
            return False
        if (res["mode"] == "charge" and d > tol) or (res["mode"] == "discharge" and c > tol):
            return False
        E += eta * c - d / eta
        if h + 1 > a and not (floor - tol <= E <= ceil + tol):
            return False
    return E >= res.soc_departure_min * B - tol


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(min_size=2, max_size=10), seed=st.integers(0, 10 ** 6))
def test_disaggregated_schedule_honours_every_ev_or_reports_it(fleet, seed):
    """Any station schedule inside the envelope (a random vertex): after the split, an EV is
    reported exactly when the independent re-check finds a broken constraint; the split never
    breaks power or SOC limits (only departure energy can fall short)."""
    s = build_sessions(fleet)
    env = aggregate(s, stations=STATIONS)
    K, T = env.energy_min_kwh.shape
    pc, pdis = cp.Variable((K, T), nonneg=True), cp.Variable((K, T), nonneg=True)
    E = cp.cumsum(cp.multiply(env.eta[:, None], pc) - cp.multiply(1 / env.eta[:, None], pdis), axis=1)
    rng = np.random.default_rng(seed)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(rng.normal(size=(K, T)), pc - pdis))),
                      [pc <= env.p_charge_max_kw, pdis <= env.p_discharge_max_kw,
                       E >= env.energy_min_kwh, E <= env.energy_max_kwh])
    prob.solve(solver="HIGHS")
    assert prob.status == cp.OPTIMAL
    d = disaggregate(s, pc.value - pdis.value, env.stations)
    rep = d.report.set_index("ev_id")
    assert set(rep["reason"]) <= {"", "departure energy below soc_departure_min"}
    r = s.reservations
    for i in range(len(r)):
        rows = np.flatnonzero(s.res_index == i)
        first = [j for j in rows if s.kind[j] != "morning"][0]
        mor = [j for j in rows if s.kind[j] == "morning"]
        ok = reference_check(r.iloc[i], (d.p_charge_kw[first], d.p_discharge_kw[first]),
                             (d.p_charge_kw[mor[0]], d.p_discharge_kw[mor[0]]) if mor else None)
        assert ok == bool(rep.loc[r.loc[i, "ev_id"], "honoured"]), r.iloc[i].to_dict()


# --- each verification rule on its own ---------------------------------------------------------
def one_ev(**changes):
    return build_sessions(frame(good_row(arrival_hour=8, departure_hour=12, departure_day=0,
                                         soc_arrival=0.5, soc_departure_min=0.6, **changes)))


def schedule(s, charge=None, discharge=None):
    pc, pdis = np.zeros((s.n, 24)), np.zeros((s.n, 24))
    for h, v in (charge or {}).items():
        pc[0, h] = v
    for h, v in (discharge or {}).items():
        pdis[0, h] = v
    return pc, pdis


NEED = 5 / 0.95  # 5 kWh to the battery


@pytest.mark.parametrize("changes, charge, discharge, reason", [
    ({}, {8: NEED}, {}, ""),
    ({}, {8: 7.5}, {}, "power above charger rating x presence (or while not plugged in)"),
    ({}, {7: NEED}, {}, "power above charger rating x presence (or while not plugged in)"),
    ({}, {8: -1.0, 9: NEED + 1}, {}, "negative power"),
    ({"mode": "charge"}, {8: 7, 9: 7}, {10: 3}, "power in a direction the mode does not allow"),
    ({"soc_min": 0.45}, {9: 7, 10: 7}, {8: 7}, "SOC below the floor min(soc_min, soc_arrival)"),
    ({"soc_max": 0.6}, {8: 7, 9: 7}, {10: 7, 11: 0.1}, "SOC above the ceiling max(soc_max, soc_arrival)"),
    ({}, {8: NEED - 0.5}, {}, "departure energy below soc_departure_min"),
])
def test_verify_names_the_broken_rule(changes, charge, discharge, reason):
    s = one_ev(**changes)
    rep = verify(s, *schedule(s, charge, discharge))
    assert rep.loc[0, "reason"] == reason and rep.loc[0, "honoured"] == (reason == "")


def test_verify_overnight_stay_across_midnight():
    s = build_sessions(frame(good_row(arrival_hour=22, departure_hour=2, mode="charge",
                                      soc_arrival=0.5, soc_departure_min=0.7)))  # 10 kWh, 4 h
    assert list(s.kind) == ["evening", "morning"]
    pc, pdis = np.zeros((2, 24)), np.zeros((2, 24))
    pc[1, 0] = pc[1, 1] = 5 / 0.95            # all of it after midnight: fine for the EV
    rep = verify(s, pc, pdis)
    assert rep.loc[0, "honoured"], rep
    pc[1, 1] = 0
    assert verify(s, pc, pdis).loc[0, "shortfall_kwh"] == pytest.approx(5.0)


def test_station_net_from_result_frame():
    class R:  # the storage frame of an OPFResult
        storage = pd.DataFrame({"hour": [0, 1, 0, 1], "name": ["ev_stations"] * 4,
                                "index": [0, 0, 1, 1], "bus": [22, 22, 14, 14],
                                "energy_kwh": 0.0, "p_charge_kw": [5.0, 0, 1, 2],
                                "p_discharge_kw": [0, 3.0, 0, 0]})
    np.testing.assert_allclose(station_net_from_result(R, "ev_stations", [14, 22]),
                               [[1, 2], [5, -3]])
