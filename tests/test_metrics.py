"""Metrics on a hand-made two-hour, three-bus case with numbers checked by hand."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from evsched import metrics
from evsched.errors import InputError


@pytest.fixture()
def case():
    # hour 0: load 100 + 50 at buses 2, 3; EV charging 30; PV −40  → P_eq = 140
    # hour 1: load 120 + 60;            EV discharging −20; WT −10 → P_eq = 150
    dispatch = pd.DataFrame(
        [(0, 2, "load", 100.0, 10.0), (0, 3, "load", 50.0, 5.0), (0, 3, "ev_station", 30.0, 0.0),
         (0, 2, "pv", -40.0, 0.0),
         (1, 2, "load", 120.0, 12.0), (1, 3, "load", 60.0, 6.0), (1, 3, "ev_station", -20.0, -3.0),
         (1, 2, "wt", -10.0, 0.0)],
        columns=["hour", "bus", "device", "p_kw", "q_kvar"])
    voltages = pd.DataFrame([(0, 1, 1.0), (0, 2, 0.98), (0, 3, 0.96),
                             (1, 1, 1.0), (1, 2, 1.01), (1, 3, 0.97)], columns=["hour", "bus", "v_pu"])
    branches = pd.DataFrame([(0, 1, 2, 150.0, 15.0, 2.0), (0, 2, 3, 80.0, 5.0, 0.5),
                             (1, 1, 2, 160.0, 16.0, 3.0), (1, 2, 3, 40.0, 3.0, 0.25)],
                            columns=["hour", "from_bus", "to_bus", "p_kw", "q_kvar", "loss_kw"])
    return dispatch, voltages, branches


def test_equivalent_load_and_peak_valley(case):
    dispatch, _, _ = case
    p = metrics.equivalent_load(dispatch)
    assert p.to_dict() == {0: 140.0, 1: 150.0}
    assert metrics.peak_valley(p) == 10.0
    by_dev = metrics.equivalent_load_by_device(dispatch)
    assert by_dev.loc[1, "ev_station"] == -20.0 and by_dev.loc[0, "pv"] == -40.0


def test_losses(case):
    _, _, branches = case
    assert metrics.loss_per_hour(branches).to_dict() == {0: 2.5, 1: 3.25}
    assert metrics.loss_kwh(branches) == 5.75
    assert metrics.loss_kwh(branches, dt_h=0.25) == pytest.approx(1.4375, abs=1e-12)


def test_voltage_metrics(case):
    _, voltages, _ = case
    # |V − 1|: 0 + 0.02 + 0.04 + 0 + 0.01 + 0.03 = 0.10 p.u.·h
    assert metrics.voltage_deviation(voltages) == pytest.approx(0.10, abs=1e-12)
    assert metrics.voltage_range(voltages) == (0.96, 1.01)
    viol = metrics.voltage_violations(voltages, 0.97, 1.05)
    assert viol[["hour", "bus"]].values.tolist() == [[0, 3]]


def test_scenario_metrics_and_pct_change(case):
    m = metrics.scenario_metrics(*case)
    assert m == pytest.approx({"peak_valley_kw": 10.0, "loss_kwh": 5.75, "voltage_deviation_pu": 0.10,
                               "vmin_pu": 0.96, "vmax_pu": 1.01})
    assert metrics.pct_change(50.0, 200.0) == -75.0
    assert math.isnan(metrics.pct_change(1.0, 0.0))


def test_ac_mismatch(case):
    _, voltages, _ = case
    other = voltages.assign(v_pu=voltages.v_pu + [0, 0, 0.001, 0, -0.002, 0])
    out = metrics.ac_mismatch(voltages, other, ac_loss_kwh=100.0, opt_loss_kwh=99.5)
    assert out["max_voltage_mismatch_pu"] == pytest.approx(0.002, abs=1e-12)
    assert out["loss_rel_diff"] == pytest.approx(-0.005)
    with pytest.raises(InputError, match="same \\(hour, bus\\)"):
        metrics.ac_mismatch(voltages, other.iloc[:-1], 1.0, 1.0)


def test_missing_column_is_named():
    with pytest.raises(InputError, match="missing column.*loss_kw"):
        metrics.loss_kwh(pd.DataFrame({"hour": [0]}))


def test_loss_split_adds_up_to_the_ac_loss(ieee33):
    # independent reference: pandapower's own branch losses of the Baran & Wu base case
    from evsched import metrics
    from evsched.powerflow import run_ac_powerflow
    p, q = ieee33.nominal_load()
    ac = run_ac_powerflow(ieee33, p[:, None], q[:, None])
    split = metrics.loss_split(ac.branches, ac.voltages, ieee33)
    assert split["loss_p_kwh"] + split["loss_q_kwh"] == pytest.approx(202.68, abs=0.05)
    # Q² part: the reactive flows of the 0.85-power-factor loads cause about a quarter of it
    assert 0.2 < split["loss_q_kwh"] / 202.68 < 0.4
