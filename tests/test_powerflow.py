"""AC power flow against the published Baran & Wu / MATPOWER case33bw figures."""
from __future__ import annotations

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
