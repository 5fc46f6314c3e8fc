"""The SOC-relaxed DistFlow model against independent references.

* the exact AC power flow (pandapower) with fixed loads,
* closed-form optima on 2-bus networks,
* a second conic solver (ECOS) on a multi-hour problem with controllable reactive power.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evsched.errors import InputError, OptimisationError
from evsched.model import DeviceGroup, OPFModel, StorageGroup
from evsched.network import build_network
from evsched.powerflow import compare, run_ac_powerflow


@pytest.fixture(scope="module")
def fixed_load_case(ieee33, daily_shape):
    p, q = ieee33.nominal_load()
    P, Q = np.outer(p, daily_shape), np.outer(q, daily_shape)
    opt = OPFModel(ieee33, P, Q, v_min_pu=0.9).solve()
    ac = run_ac_powerflow(ieee33, P, Q)
    return opt, ac


def test_socp_reproduces_ac_power_flow(fixed_load_case):
    opt, ac = fixed_load_case
    cmp = compare(ac, opt)
    assert cmp["max_voltage_mismatch_pu"] < 1e-4
    assert abs(cmp["loss_rel_diff"]) < 1e-3
    assert opt.max_relaxation_gap_rel < 1e-6
    assert opt.loss_per_hour_kw().max() == pytest.approx(202.68, abs=0.05)


def test_result_frames(fixed_load_case):
    opt, _ = fixed_load_case
    assert list(opt.voltages.columns) == ["hour", "bus", "v_pu"]
    assert list(opt.branches.columns) == ["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw", "loading_pct"]
    assert list(opt.relaxation_gap.columns) == ["hour", "from_bus", "to_bus", "gap_pu2"]
    assert opt.solver in ("CLARABEL", "MOSEK") and opt.status == "optimal"
    assert opt.voltages.hour.nunique() == 24 and opt.voltages.bus.nunique() == 33


def two_bus(r_ohm=1.6, x_ohm=1.0, load_kw=500.0, load_kvar=300.0):
    buses = pd.DataFrame({"bus": [1, 2], "type": ["slack", "pq"], "vn_kv": [12.66, 12.66],
                          "p_kw": [0.0, load_kw], "q_kvar": [0.0, load_kvar]})
    lines = pd.DataFrame({"from_bus": [1], "to_bus": [2], "r_ohm": [r_ohm], "x_ohm": [x_ohm],
                          "in_service": [True]})
    return build_network(buses, lines, name="two-bus")


def test_two_bus_reactive_compensation_closed_form():
    """Unlimited reactive support at the load bus cancels Q; then P solves r·P² − P + p = 0."""
    net = two_bus()
    p, q = net.nominal_load()
    var = DeviceGroup("svc", buses=[2], p_min_kw=0.0, p_max_kw=0.0, q_min_kvar=-1000.0, q_max_kvar=1000.0)
    res = OPFModel(net, p, q, devices=[var], v_min_pu=0.5, v_max_pu=1.5).solve()
    r, d = net.r_pu[0], 0.5  # p.u. on 1 MVA
    P = (1 - np.sqrt(1 - 4 * r * d)) / (2 * r)
    assert res.loss_kwh == pytest.approx((P - d) * 1000, rel=1e-6)
    # the device supplies the load's 300 kvar plus the line's reactive loss x·ℓ (Q_sending = 0)
    assert res.dispatch.q_kvar.iloc[0] == pytest.approx(-(300.0 + net.x_pu[0] * P**2 * 1000), abs=0.1)  # flat near the optimum


def test_two_bus_storage_flattens_demand():
    """Fixed energy shifted between two hours: by strict convexity the optimum equalises demand."""
    net = two_bus(load_kw=0.0, load_kvar=0.0)  # no reactive load: Q_sending = x·ℓ
    load = np.zeros((2, 2))
    load[1] = [800.0, 200.0]
    st = StorageGroup("ev", buses=[2], p_charge_max_kw=1000.0, p_discharge_max_kw=1000.0,
                      energy_min_kwh=[[-1e3, 300.0]], energy_max_kwh=[[1e3, 300.0]],
                      eta_charge=1.0, eta_discharge=1.0)
    res = OPFModel(net, load, np.zeros((2, 2)), devices=[st], v_min_pu=0.5, v_max_pu=1.5).solve()
    nd = res.net_demand.query("bus == 2").p_kw.to_numpy()
    np.testing.assert_allclose(nd, [650.0, 650.0], atol=0.1)  # loss is flat (quadratic) near the optimum
    # ℓ = P² + Q² with P = d + rℓ, Q = xℓ (v_1 = 1):  (r² + x²)ℓ² + (2dr − 1)ℓ + d² = 0
    r, x, d = net.r_pu[0], net.x_pu[0], 0.65
    a, b, c = r**2 + x**2, 2 * d * r - 1, d**2
    ell = (-b - np.sqrt(b**2 - 4 * a * c)) / (2 * a)
    assert res.loss_kwh == pytest.approx(2 * r * ell * 1000, rel=1e-6)
    assert res.storage.energy_kwh.iloc[-1] == pytest.approx(300.0, abs=1e-3)


@pytest.fixture(scope="module")
def reactive_case(ieee33, daily_shape):
    p, q = ieee33.nominal_load()
    shape = daily_shape[::4]  # 6 steps
    P, Q = np.outer(p, shape), np.outer(q, shape)
    inv = DeviceGroup("pv", buses=[18, 25, 33], p_min_kw=-300.0, p_max_kw=-300.0,
                      q_min_kvar=-400.0, q_max_kvar=400.0, s_max_kva=400.0, kind="pv")
    inv = DeviceGroup("pv", buses=[18, 25, 33], p_min_kw=np.full((3, 6), -300.0),
                      p_max_kw=np.full((3, 6), -300.0), q_min_kvar=-400.0, q_max_kvar=400.0,
                      s_max_kva=400.0, kind="pv")
    return ieee33, P, Q, inv


def test_second_solver_agrees(reactive_case):
    net, P, Q, inv = reactive_case
    a = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.9, construction="constant").solve(solver="CLARABEL")
    b = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.9, construction="constant").solve(solver="ECOS")
    assert b.solver == "ECOS"
    assert a.objective == pytest.approx(b.objective, rel=1e-4)
    # reactive support is used and respects the circle |q| ≤ sqrt(400² − 300²)
    q = a.dispatch.q_kvar.abs()
    assert q.max() <= np.sqrt(400**2 - 300**2) + 1e-3 and q.max() > 50


def test_constructions_agree_and_resolve(reactive_case):
    net, P, Q, inv = reactive_case
    results = {}
    for c in ("parametric", "constant", "rhs"):
        m = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.9, construction=c)
        first = m.solve().objective
        m.update(load_p_kw=0.8 * P, load_q_kvar=0.8 * Q)
        second = m.solve().objective
        results[c] = (first, second)
        if c == "parametric":
            assert m.is_dpp()
    ref = OPFModel(net, 0.8 * P, 0.8 * Q, devices=[inv], v_min_pu=0.9, construction="constant").solve().objective
    for c, (first, second) in results.items():
        assert first == pytest.approx(results["constant"][0], rel=1e-6), c
        assert second == pytest.approx(ref, rel=1e-6), c
        assert second < first


def test_auto_construction_switches_for_sweeps(reactive_case):
    net, P, Q, inv = reactive_case
    m = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.9)
    assert m.construction == "constant"  # cheapest one-off
    first = m.solve().objective
    m.update(load_p_kw=0.8 * P, load_q_kvar=0.8 * Q)
    assert m.construction == "rhs"  # sweeps: compile once, then rewrite the right-hand side
    second = m.solve().objective
    ref = OPFModel(net, 0.8 * P, 0.8 * Q, devices=[inv], v_min_pu=0.9, construction="constant").solve().objective
    assert second == pytest.approx(ref, rel=1e-6) and second < first
    m.update(load_p_kw=0.9 * P, load_q_kvar=0.9 * Q)
    assert m._compiled is not None  # no recompilation: b was rewritten in place
    ref = OPFModel(net, 0.9 * P, 0.9 * Q, devices=[inv], v_min_pu=0.9, construction="constant").solve().objective
    assert m.solve().objective == pytest.approx(ref, rel=1e-6)


def test_update_device_data_rhs(reactive_case):
    net, P, Q, inv = reactive_case
    m = OPFModel(net, P, Q, devices=[inv], v_min_pu=0.9, construction="rhs")
    m.solve()
    inv2 = DeviceGroup("pv", buses=[18, 25, 33], p_min_kw=np.full((3, 6), -100.0),
                       p_max_kw=np.full((3, 6), -100.0), q_min_kvar=-400.0, q_max_kvar=400.0,
                       s_max_kva=400.0, kind="pv")
    m.update(devices=[inv2])
    got = m.solve()
    ref = OPFModel(net, P, Q, devices=[inv2], v_min_pu=0.9, construction="constant").solve()
    assert got.objective == pytest.approx(ref.objective, rel=1e-6)
    assert got.dispatch.p_kw.to_numpy() == pytest.approx(-100.0)


def test_infeasible_voltage_names_family_hour_and_bus(ieee33):
    p, q = ieee33.nominal_load()
    P = np.c_[0.5 * p, 1.6 * p]  # hour 1 is far too heavy for V ≥ 0.95
    Q = np.c_[0.5 * q, 1.6 * q]
    with pytest.raises(OptimisationError) as err:
        OPFModel(ieee33, P, Q, v_min_pu=0.95).solve()
    msg = str(err.value)
    assert "infeasible" in msg and "voltage_limits (lower" in msg
    assert "hour(s) [1]" in msg and "worst first ['18'" in msg and "at bus 18, hour 1" in msg


def test_infeasible_energy_envelope_names_station(ieee33):
    p, q = ieee33.nominal_load()
    st = StorageGroup("stations", buses=[10], p_charge_max_kw=50.0, p_discharge_max_kw=0.0,
                      energy_min_kwh=[[0.0, 500.0]], energy_max_kwh=[[1e4, 1e4]])
    with pytest.raises(OptimisationError, match=r"storage_energy \(lower.*'stations'.*hour\(s\) \[1\].*stations\[0\] at bus 10"):
        OPFModel(ieee33, np.c_[p, p], np.c_[q, q], devices=[st], v_min_pu=0.9).solve()


def test_bad_device_data_is_named():
    with pytest.raises(InputError, match=r"'pv', device 1 at bus 25, hour 0, field 'p_min_kw'.*≤ p_max_kw"):
        DeviceGroup("pv", buses=[18, 25], p_min_kw=[[-1.0], [5.0]], p_max_kw=[[0.0], [0.0]])
    with pytest.raises(InputError, match="reactive=True needs s_max_kva"):
        StorageGroup("s", buses=[3], p_charge_max_kw=1, p_discharge_max_kw=1,
                     energy_min_kwh=[[0.0]], energy_max_kwh=[[1.0]], reactive=True)


def test_bad_limits_and_shapes(ieee33):
    p, q = ieee33.nominal_load()
    with pytest.raises(InputError, match="v_min_pu < v_max_pu"):
        OPFModel(ieee33, p, q, v_min_pu=1.05, v_max_pu=0.95)
    with pytest.raises(InputError, match=r"load_p_kw: expected shape \(n_bus=33, T\)"):
        OPFModel(ieee33, p[:30], q[:30])
    bad = p.copy()
    bad[4] = np.nan
    with pytest.raises(InputError, match="load_p_kw: bus 5, hour 0 is nan"):
        OPFModel(ieee33, bad, q)


def test_solver_selection(monkeypatch):
    from evsched import solvers
    if not solvers.mosek_usable():
        assert solvers.select_solver() == "CLARABEL"
    assert solvers.select_solver("ecos") == "ECOS"
    with pytest.raises(ValueError, match="not installed"):
        solvers.select_solver("NOSUCHSOLVER")


def test_clarabel_fallback_is_announced_once_per_process_tree(monkeypatch):
    """The kernel prints the fallback line once; worker processes it starts later (a dask pool)
    inherit the environment and stay silent."""
    import subprocess
    import sys

    from evsched import solvers
    if solvers.mosek_usable():
        pytest.skip("a MOSEK licence is usable here: no fallback line")
    code = ("import os, subprocess, sys\n"
            "from evsched import solvers\n"
            "solvers.select_solver(); solvers.select_solver.cache_clear(); solvers.select_solver()\n"
            "subprocess.run([sys.executable, '-c', 'from evsched import solvers; solvers.select_solver()'], check=True)\n")
    monkeypatch.delenv(solvers.ANNOUNCED_ENV, raising=False)
    monkeypatch.delenv("EVSCHED_SOLVER", raising=False)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.count("no MOSEK licence found, solving with Clarabel") == 1, out


def test_storage_does_not_burn_surplus_energy():
    """Must-take surplus at a bus with storage: the optimum never charges and discharges at once.

    Without the time-sharing limit and the converter-loss term, charging and discharging in
    the same hour dumps energy in the converters and lowers the network loss for free.
    """
    net = two_bus(load_kw=0.0, load_kvar=0.0)
    T = 4
    load = np.zeros((2, T))
    load[1] = [-900.0, -900.0, 100.0, 100.0]  # surplus injection, then a small load
    st = StorageGroup("ev", buses=[2], p_charge_max_kw=300.0, p_discharge_max_kw=300.0,
                      p_total_max_kw=300.0, energy_min_kwh=[[0.0] * T], energy_max_kwh=[[0.0] * T],
                      eta_charge=0.9, eta_discharge=0.9)
    m = OPFModel(net, load, np.zeros((2, T)), devices=[st], v_min_pu=0.5, v_max_pu=1.5)
    res = m.solve()
    both = np.minimum(res.storage.p_charge_kw, res.storage.p_discharge_kw)
    assert both.max() < 1e-3
    burner = OPFModel(net, load, np.zeros((2, T)), devices=[st], v_min_pu=0.5, v_max_pu=1.5,
                      count_converter_losses=False).solve()
    # E stays 0, so the only use of the storage is burning: η·p_ch = p_dis/η. The network-loss-only
    # objective does exploit it in the surplus hours, up to the time-sharing limit p_ch + p_dis ≤ 300
    burnt = burner.storage.query("hour < 2")
    np.testing.assert_allclose(burnt.p_charge_kw, 300.0 / (1 + 0.9**2), rtol=1e-4)
    np.testing.assert_allclose(burnt.p_discharge_kw, 300.0 * 0.9**2 / (1 + 0.9**2), rtol=1e-4)
    assert burner.loss_kwh < res.loss_kwh


def _force_status(model, status):
    """Make the next solve of ``model`` report ``status`` (the solution itself stays correct)."""
    original = model.problem.solve

    def solve(*args, **kwargs):
        out = original(*args, **kwargs)
        model.problem._status = status
        return out
    model.problem.solve = solve


def test_optimal_inaccurate_is_accepted_with_warning_and_recorded(ieee33):
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, p, q, v_min_pu=0.9, construction="constant")
    _force_status(m, "optimal_inaccurate")
    with pytest.warns(UserWarning, match="optimal_inaccurate.*relaxation gap"):
        res = m.solve()
    assert res.status == "optimal_inaccurate"
    assert res.max_relaxation_gap_rel < 1e-6 and res.loss_kwh == pytest.approx(202.68, abs=0.05)


def test_failed_status_names_the_model(ieee33):
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, p, q, v_min_pu=0.9, construction="constant")
    _force_status(m, "unbounded")
    with pytest.raises(OptimisationError, match=r"OPF on 'ieee33' \(33 buses × 1 steps.*returned 'unbounded'"):
        m.solve()
