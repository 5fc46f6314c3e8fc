"""AC power flow against the published Baran & Wu / MATPOWER case33bw figures."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from evsched.powerflow import run_ac_powerflow


@pytest.fixture(scope="module")
def base_pf(ieee33):
    p, q = ieee33.nominal_load()
    return run_ac_powerflow(ieee33, p, q, v_slack_pu=1.0)


def test_base_case_loss(base_pf):
    # Baran & Wu (1989) / MATPOWER case33bw: 202.68 kW, 135.14 kvar
    assert base_pf.loss_kwh == pytest.approx(202.68, abs=0.05)
    sub = base_pf.substation.iloc[0]
    assert sub.p_kw == pytest.approx(3715 + 202.68, abs=0.05)
    assert sub.q_kvar == pytest.approx(2300 + 135.14, abs=0.05)


def test_base_case_minimum_voltage(base_pf):
    v = base_pf.voltages
    worst = v.loc[v.v_pu.idxmin()]
    assert worst.bus == 18
    assert worst.v_pu == pytest.approx(0.9131, abs=1e-4)
    assert v.loc[v.bus == 1, "v_pu"].iloc[0] == pytest.approx(1.0)


def test_multi_hour_tidy_format(ieee33, daily_shape):
    p, q = ieee33.nominal_load()
    res = run_ac_powerflow(ieee33, np.outer(p, daily_shape), np.outer(q, daily_shape))
    assert list(res.voltages.columns) == ["hour", "bus", "v_pu"]
    assert list(res.branches.columns) == ["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw", "loading_pct"]
    assert len(res.voltages) == 33 * 24 and len(res.branches) == 32 * 24
    per_hour = res.loss_per_hour_kw()
    assert per_hour.idxmax() == int(np.argmax(daily_shape))
    assert per_hour.max() == pytest.approx(202.68, abs=0.05)  # the peak hour is nominal load


def _fresh_flat_start(network, p, q, v_slack_pu):
    """pandapower on a net built for this call alone, every step from a flat start: the
    straightforward reference for the cached, recycled time-series path."""
    import pandapower as pp
    net = network.to_pandapower()
    net.ext_grid["vm_pu"] = v_slack_pu
    lb = net.load.bus.to_numpy()
    v, loss = [], []
    for t in range(p.shape[1]):
        net.load["p_mw"], net.load["q_mvar"] = p[lb, t] / 1e3, q[lb, t] / 1e3
        pp.runpp(net, init="flat", numba=False, tolerance_mva=1e-9, calculate_voltage_angles=True)
        v.append(net.res_bus.vm_pu.to_numpy().copy())
        loss.append(net.res_line.pl_mw.sum() * 1e3)
    return np.array(v).T, np.array(loss)


def test_reused_net_never_carries_data_between_calls(ieee33):
    """run_ac_powerflow keeps one pandapower net per network and recycles its internals from
    step to step: every call must still equal a fresh flat-start solve, whatever the previous
    call's slack voltage, demand or network was."""
    rng = np.random.default_rng(7)
    p0, q0 = ieee33.nominal_load()
    shorter = dataclasses.replace(ieee33, r_pu=ieee33.r_pu * 0.5, x_pu=ieee33.x_pu * 0.5)
    for network, v_slack, scale in ((ieee33, 1.0, 1.0), (ieee33, 1.04, 1.4), (shorter, 1.02, 0.6),
                                    (ieee33, 0.98, 0.8)):
        p = p0[:, None] * scale * rng.uniform(0.2, 1.6, (1, 6))
        q = q0[:, None] * scale * rng.uniform(0.2, 1.6, (1, 6))
        got = run_ac_powerflow(network, p, q, v_slack_pu=v_slack)
        v_ref, loss_ref = _fresh_flat_start(network, p, q, v_slack)
        v_got = got.voltages.pivot(index="bus", columns="hour", values="v_pu").to_numpy()
        assert np.abs(v_got - v_ref).max() < 1e-9
        np.testing.assert_allclose(got.loss_per_hour_kw().to_numpy(), loss_ref, rtol=1e-8)
