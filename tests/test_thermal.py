"""Thermal limits: line ratings (data, conversions), the current-limit and transformer families
(closed-form optimum, re-solve, diagnosis) and the loading reported against pandapower's."""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest

import evsched
from evsched.errors import InputError, NetworkDataError, OptimisationError
from evsched.model import DeviceGroup, OPFModel, StorageGroup
from evsched.model import constraints as fam
from evsched.network import build_network, load_network_csv
from evsched.paths import DATA
from evsched.powerflow import run_ac_powerflow

LOADING_TOL_PCT = 0.5  # percentage points, SOCP vs pandapower loading


# --- data -----------------------------------------------------------------------------------------
def test_ieee33_ratings_follow_the_documented_rule(ieee33):
    spec = importlib.util.spec_from_file_location("make_ieee33", DATA / "ieee33" / "make_ieee33.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    import pandapower.networks as pn
    lines = pd.read_csv(DATA / "ieee33" / "lines.csv")
    assert lines.rating_a.tolist() == mk.ratings_a(pn.case33bw())
    assert set(lines.rating_a) <= set(mk.CONDUCTOR_CLASSES_A.values())
    # the first sections carry the whole feeder: the largest classes
    assert ieee33.branch_rating_a[:2].tolist() == [276.0, 242.0]
    assert np.isfinite(ieee33.branch_rating_a).all()
    assert ieee33.i_base_a == pytest.approx(1000 / (np.sqrt(3) * 12.66))


def test_rating_carried_through_conversions(ieee33):
    pp_net = ieee33.to_pandapower()
    np.testing.assert_allclose(pp_net.line.max_i_ka * 1e3, ieee33.branch_rating_a)
    back = evsched.from_pandapower(pp_net)
    np.testing.assert_allclose(back.branch_rating_a, ieee33.branch_rating_a)
    # pandapower's own case33bw carries no rating (99999 kA placeholder): unrated, not 1e8 A
    import pandapower.networks as pn
    assert np.isnan(evsched.from_pandapower(pn.case33bw()).branch_rating_a).all()
    # df and parallel count as in pandapower's loading_percent
    pp_net.line.loc[0, ["df", "parallel"]] = [0.8, 2]
    pp_net.line.loc[0, "r_ohm_per_km"] *= 2  # same impedance with two circuits
    pp_net.line.loc[0, "x_ohm_per_km"] *= 2
    assert evsched.from_pandapower(pp_net).branch_rating_a[0] == pytest.approx(276.0 * 0.8 * 2)
    # replicated feeders keep their ratings
    np.testing.assert_allclose(np.sort(ieee33.replicate(2).branch_rating_a),
                               np.sort(np.tile(ieee33.branch_rating_a, 2)))


def test_bad_rating_is_named(tmp_path):
    for stem in ("buses", "lines"):
        (tmp_path / f"{stem}.csv").write_text((DATA / "ieee33" / f"{stem}.csv").read_text())
    lines = pd.read_csv(tmp_path / "lines.csv")
    lines.loc[4, "rating_a"] = -5.0
    lines.to_csv(tmp_path / "lines.csv", index=False)
    with pytest.raises(NetworkDataError, match=r"lines.csv, row 6 \(5-6\), field 'rating_a' = -5.0: must be a "
                                               r"finite number > 0 A"):
        load_network_csv(tmp_path)
    lines.loc[4, "rating_a"] = np.nan  # empty: unrated
    lines.to_csv(tmp_path / "lines.csv", index=False)
    net = load_network_csv(tmp_path)
    bt = net.branch_table().set_index(["from_bus", "to_bus"]).rating_a
    assert np.isnan(bt.loc[(5, 6)]) and np.isfinite(bt.drop((5, 6))).all()


# --- the families: closed form on two buses ---------------------------------------------------------
VN, SB = 12.66, 1000.0
R, X, W = 0.01, 0.02, 0.5   # p.u. impedance, objective weight of the generator


def two_bus(rating_pu=None):
    zb, ib = VN ** 2 / (SB / 1e3), SB / (np.sqrt(3) * VN)
    buses = pd.DataFrame({"bus": [1, 2], "type": ["slack", "pq"], "vn_kv": [VN, VN], "p_kw": [0.0, 0.0],
                          "q_kvar": [0.0, 0.0]})
    lines = pd.DataFrame({"from_bus": [1], "to_bus": [2], "r_ohm": [R * zb], "x_ohm": [X * zb],
                          "in_service": [True], "rating_a": [np.nan if rating_pu is None else rating_pu * ib]})
    return build_network(buses, lines, name="two-bus")


def exporter():
    """A generator at bus 2 that may export up to 1 MW, rewarded W kWh per kWh (energy_cost on
    p = −g): it exports as much as the binding limit allows."""
    return DeviceGroup("gen", buses=[2], p_min_kw=-1000.0, p_max_kw=0.0, energy_cost=W)


def closed_form(l_max):
    r"""Optimum with ℓ = ℓ_max binding, no reactive load and v_0 = 1: Q = x ℓ (balance at bus 2),
    ℓ = P² + Q² (tight cone) → P = −sqrt(ℓ_max − x² ℓ_max²) (export), g = r ℓ_max − P,
    objective = (r ℓ_max − W g) · S_base [kWh for one hour]."""
    P = -np.sqrt(l_max - X ** 2 * l_max ** 2)
    g = R * l_max - P
    return P, X * l_max, g, (R * l_max - W * g) * SB


@pytest.mark.parametrize("construction", ["constant", "rhs", "parametric"])
def test_two_bus_current_limit_closed_form(construction):
    net = two_bus(rating_pu=0.5)  # I_max = 0.5 I_base → ℓ ≤ 0.25
    m = OPFModel(net, np.zeros((2, 1)), np.zeros((2, 1)), devices=[exporter()], v_min_pu=0.5, v_max_pu=1.5,
                 families=fam.thermal_families(), construction=construction)
    res = m.solve()
    P, Q, g, obj = closed_form(0.25)
    assert res.objective == pytest.approx(obj, rel=1e-6)
    br = res.branches.iloc[0]
    assert br.p_kw == pytest.approx(P * SB, rel=1e-6) and br.q_kvar == pytest.approx(Q * SB, rel=1e-5)
    assert res.dispatch.p_kw.iloc[0] == pytest.approx(-g * SB, rel=1e-6)
    assert br.loading_pct == pytest.approx(100.0, abs=1e-4)
    # without the family the export is not limited by the line (1 MW, the generator's limit)
    free = OPFModel(net, np.zeros((2, 1)), np.zeros((2, 1)), devices=[exporter()], v_min_pu=0.5,
                    v_max_pu=1.5).solve()
    assert free.dispatch.p_kw.iloc[0] == pytest.approx(-1000.0, rel=1e-6)
    assert free.branches.loading_pct.iloc[0] > 190


def test_two_bus_transformer_rating_closed_form():
    """P0² + Q0² ≤ S² at the slack with v0 = 1 is ℓ ≤ S² on the single branch: same optimum."""
    net = two_bus()  # unrated line
    m = OPFModel(net, np.zeros((2, 1)), np.zeros((2, 1)), devices=[exporter()], v_min_pu=0.5, v_max_pu=1.5,
                 families=fam.thermal_families(lines=True, transformer=True), transformer_kva=500.0)
    res = m.solve()
    _, _, g, obj = closed_form(0.5 ** 2)
    assert res.objective == pytest.approx(obj, rel=1e-6)
    assert res.dispatch.p_kw.iloc[0] == pytest.approx(-g * SB, rel=1e-6)
    assert np.isnan(res.branches.loading_pct.iloc[0])  # unrated: no line loading, no line limit
    sub = res.branches.iloc[0]
    assert np.hypot(sub.p_kw, sub.q_kvar) == pytest.approx(500.0, rel=1e-6)


def test_transformer_family_needs_a_rating():
    with pytest.raises(InputError, match="transformer_rating' needs transformer_kva"):
        OPFModel(two_bus(), np.zeros((2, 1)), np.zeros((2, 1)), families=fam.thermal_families(transformer=True))


# --- re-solves ----------------------------------------------------------------------------------
def shifting_case(net, T=3):
    """Loads and a station at bus 18 that must take 1.5 MWh over 3 hours: the current limits of
    the first sections decide when."""
    p, q = net.nominal_load()
    P = np.outer(p, [0.9, 0.5, 0.7])
    Q = np.outer(q, [0.9, 0.5, 0.7])
    st = StorageGroup("st", buses=[18], p_charge_max_kw=1500.0, p_discharge_max_kw=0.0,
                      energy_min_kwh=[[0.0, 0.0, 1500.0]], energy_max_kwh=[[1500.0, 1500.0, 1500.0]])
    return P, Q, [st]


def ratings(net, head_a):
    a = np.repeat(net.branch_rating_a[:, None], 3, axis=1)
    a[:3] = head_a  # the first three sections, per hour
    return a


@pytest.mark.parametrize("construction", ["rhs", "auto"])
def test_rhs_resolve_with_changed_rating_equals_constant_build(ieee33, construction):
    P, Q, devs = shifting_case(ieee33)
    families = fam.thermal_families()
    first = ratings(ieee33, 400.0)
    m = OPFModel(ieee33, P, Q, devices=devs, v_min_pu=0.85, families=families, branch_rating_a=first,
                 construction=construction)
    m.solve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to rebuilding
        for head in ([400.0, 120.0, 400.0], [195.0, 400.0, 160.0]):
            new = ratings(ieee33, np.array(head)[None, :])
            m.update(branch_rating_a=new)
            got = m.solve()
            assert m.construction == "rhs"
            ref = OPFModel(ieee33, P, Q, devices=devs, v_min_pu=0.85, families=families, branch_rating_a=new,
                           construction="constant").solve()
            assert got.objective == pytest.approx(ref.objective, rel=1e-6)
            # the limit binds where it was tightened: ≤ 100 % everywhere, = 100 % somewhere
            load = got.branches.set_index(["hour", "from_bus", "to_bus"]).loading_pct
            assert load.max() == pytest.approx(100.0, abs=1e-3)


def test_update_keeps_the_rated_branches(ieee33):
    P, Q, devs = shifting_case(ieee33)
    m = OPFModel(ieee33, P, Q, devices=devs, v_min_pu=0.85, families=fam.thermal_families())
    a = ieee33.branch_rating_a.copy()
    a[5] = np.nan
    with pytest.raises(InputError, match="must rate the same branches"):
        m.update(branch_rating_a=a)
    with pytest.raises(InputError, match=r"branch 0 \(1-2\), hour 0 is -1.0 A"):
        OPFModel(ieee33, P, Q, branch_rating_a=np.r_[-1.0, a[1:]], families=fam.thermal_families())


# --- diagnosis -------------------------------------------------------------------------------------
def test_diagnosis_names_the_line_and_hours(ieee33):
    p, q = ieee33.nominal_load()
    a = np.repeat(ieee33.branch_rating_a[:, None], 2, axis=1)
    a[0, 1] = 120.0  # line 1-2 derated in hour 1 below the base load's ≈ 160 A
    m = OPFModel(ieee33, np.c_[0.5 * p, 0.75 * p], np.c_[0.5 * q, 0.75 * q], v_min_pu=0.9,
                 families=fam.thermal_families(), branch_rating_a=a)
    with pytest.raises(OptimisationError) as err:
        m.solve()
    msg = str(err.value)
    assert ("branch_current_limits (upper, ℓ ≤ I_max²) binds at hour(s) [1] for 1 branch(s), worst first "
            "['1-2']") in msg
    assert "voltage_limits" not in msg and "transformer" not in msg
    assert fam.elastic_of("branch_current_limits", fam.branch_current_limits) is fam.elastic_branch_current_limits
    assert fam.elastic_of("transformer_rating", fam.transformer_rating) is fam.elastic_transformer_rating


def test_diagnosis_names_the_transformer_hours(ieee33):
    p, q = ieee33.nominal_load()
    m = OPFModel(ieee33, np.c_[0.5 * p, 0.9 * p, 0.6 * p], np.c_[0.5 * q, 0.9 * q, 0.6 * q], v_min_pu=0.9,
                 families=fam.thermal_families(lines=False, transformer=True), transformer_kva=3000.0)
    with pytest.raises(OptimisationError, match=r"transformer_rating \(upper, \|S_0\| ≤ S_max\) binds at "
                                                r"hour\(s\) \[1\] for 1 transformer\(s\), worst first "
                                                r"\['substation transformer \(bus 1\)'\]"):
        m.solve()


# --- loading against pandapower ------------------------------------------------------------------
def derated(net, head_a):
    """``net`` with the lines of its first three branches rated ``head_a`` [A]."""
    import dataclasses
    lines = net.lines.copy()
    lines.loc[net.branch_line[:3], "rating_a"] = head_a
    return dataclasses.replace(net, lines=lines, _cache={})


def test_loading_agrees_with_pandapower(ieee33):
    net = derated(ieee33, 200.0)
    P, Q, devs = shifting_case(net)
    res = OPFModel(net, P, Q, devices=devs, v_min_pu=0.85, families=fam.thermal_families()).solve()
    d_p = res.net_demand.pivot(index="bus", columns="hour", values="p_kw").loc[net.bus_ids].to_numpy()
    d_q = res.net_demand.pivot(index="bus", columns="hour", values="q_kvar").loc[net.bus_ids].to_numpy()
    ac = run_ac_powerflow(net, d_p, d_q)  # pandapower's loading_percent against the same ratings
    key = ["hour", "from_bus", "to_bus"]
    both = res.branches.merge(ac.branches, on=key, suffixes=("_socp", "_ac"))
    assert len(both) == net.n_branch * 3
    assert (both.loading_pct_socp - both.loading_pct_ac).abs().max() < LOADING_TOL_PCT
    assert both.loading_pct_ac.max() == pytest.approx(100.0, abs=LOADING_TOL_PCT)  # the limit binds


def test_scenario_loading_columns_and_ac_agreement():
    from evsched import report, scenarios
    from evsched.case import build_case, load_case
    # a 2.8 MVA transformer binds at the late-morning peak of S2 (unconstrained: 2.97 MVA)
    cd = build_case(load_case(thermal_limits=True, transformer_kva=2800.0))
    s2 = scenarios.build_s2(cd)
    row = s2.summary()
    assert row["max_loading_pct"] <= 100.0 + 1e-3
    assert s2.ac_check()["max_loading_mismatch_pct"] < LOADING_TOL_PCT
    assert list(s2.branches.columns[-1:]) == ["loading_pct"] and "loading_pct" in report.BRANCH_COLUMNS
    sub = s2.ac.substation
    s_kva = np.hypot(sub.p_kw, sub.q_kvar)
    assert s_kva.max() == pytest.approx(2800.0, rel=1e-4)  # binds, and holds in the AC power flow
    assert row["exact"] and row["reservations_not_honoured"] == 0
    s0 = scenarios.build_s0(cd)
    assert s0.summary()["max_loading_pct"] == pytest.approx(s0.ac.branches.loading_pct.max())
