"""Feeder history calibration, day-ahead forecasts (no peeking), backtest metrics, parameters."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from evsched.errors import InputError
from evsched.forecast import (
    backtest,
    backtest_metrics,
    build_history,
    check_params,
    choose_model,
    daily_mape,
    day_ahead,
    day_types,
    default_history,
    error_band,
    forecast_bus_load,
    forecast_classes,
    forecast_renewables,
    mape_pct,
    public_holidays,
    renewable_backtest,
)
from evsched.history import build_feeder, bus_history, feeder_history
from evsched.profiles import load_profiles

TARGET = "2016-12-07"


@pytest.fixture(scope="module")
def history():
    return default_history()


@pytest.fixture(scope="module")
def feeder(history):
    return history.feeder


# --------------------------------------------------------------------------- history
def test_feeder_history_peaks_at_nominal(feeder):
    fh = feeder_history(feeder)
    assert len(fh) == 8784
    assert fh.p_kw.max() == pytest.approx(3715.0, rel=1e-12)
    assert fh.q_kvar.max() == pytest.approx(2300.0, rel=1e-12)
    assert fh.p_kw.idxmax() == pd.Timestamp("2016-01-22 10:00")
    assert fh.p_kw.min() == pytest.approx(344.24, abs=0.01)


def test_bus_history_sums_to_feeder_and_follows_class_power_factors(feeder):
    bh = bus_history(feeder)
    assert bh.shape == (8784 * 33, 4) and list(bh.columns) == ["time", "bus", "p_kw", "q_kvar"]
    tot = bh.groupby("time")[["p_kw", "q_kvar"]].sum()
    assert tot.p_kw.max() == pytest.approx(3715.0, rel=1e-12)
    assert tot.q_kvar.max() == pytest.approx(2300.0, rel=1e-12)
    assert (bh[bh.bus == 1][["p_kw", "q_kvar"]] == 0).all().all()
    pf = feeder.power_factor
    assert pf["H0-A_pload"] == pytest.approx(0.885, abs=5e-4)
    assert pf["G1-A_pload"] == pytest.approx(0.790, abs=5e-4)
    # a purely residential bus has the household power factor at every hour
    b2 = bh[bh.bus == 2]
    ratio = b2.q_kvar / b2.p_kw
    assert ratio.min() > np.tan(np.arccos(pf["H0-A_pload"])) - 1e-12
    assert ratio.max() < np.tan(np.arccos(pf["G0-A_pload"])) + 1e-12
    # annual energy shares of the mix are reproduced: bus 24 is commercial, 40 % G1-A
    e = feeder.p_coef_kw.loc[24] * feeder.class_hourly.mean()
    assert e["G1-A_pload"] / e.sum() == pytest.approx(0.40, abs=1e-12)


def test_fifteen_minute_history_averages_to_hourly(feeder):
    f15 = feeder_history(feeder, "15min")
    fh = feeder_history(feeder, "1h")
    np.testing.assert_allclose(f15.p_kw.resample("1h").mean().to_numpy(), fh.p_kw.to_numpy(), rtol=1e-12)
    assert f15.p_kw.max() > 3715.0                 # quarter-hour peaks exceed the hourly peak


def test_calendar():
    hol = public_holidays(2016)
    assert [d.strftime("%m-%d") for d in hol] == ["01-01", "03-25", "03-28", "05-01", "05-05", "05-16",
                                                  "05-26", "10-03", "11-01", "12-25", "12-26"]
    t = day_types(pd.DatetimeIndex(["2016-12-07", "2016-12-10", "2016-12-11", "2016-11-01",
                                    "2016-12-24", "2016-10-31"]))
    assert t.tolist() == [0, 1, 2, 2, 1, 0]


# --------------------------------------------------------------------------- no peeking
def _perturbed(history, day, factor=3.0):
    d = history.index_of(day)
    load, ren = history.load.copy(), history.renewables.copy()
    load[d:] *= factor                       # the target day and everything after it
    ren[d:] = 1.0 - ren[d:]
    return dataclasses.replace(history, load=load, renewables=ren)


@pytest.mark.parametrize("model", ["seasonal_naive", "ridge"])
def test_forecast_ignores_target_day_actuals(history, model):
    ref = forecast_bus_load(TARGET, model, history=history)
    alt = forecast_bus_load(TARGET, model, history=_perturbed(history, TARGET))
    pd.testing.assert_frame_equal(ref, alt, check_exact=True)
    r1 = forecast_renewables(TARGET, history=history)
    r2 = forecast_renewables(TARGET, history=_perturbed(history, TARGET))
    pd.testing.assert_frame_equal(r1, r2, check_exact=True)
    # sensitivity check: perturbing the day before does change the ridge forecast
    if model == "ridge":
        prev = (pd.Timestamp(TARGET) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        moved = forecast_bus_load(TARGET, model, history=_perturbed(history, prev, 1.5))
        assert not np.allclose(moved.p_kw, ref.p_kw)


def test_backtest_ignores_target_day_actuals(history):
    a = backtest(TARGET, history=history)
    b = backtest(TARGET, history=_perturbed(history, TARGET))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_seasonal_naive_is_last_week(history, feeder):
    fc = forecast_bus_load(TARGET, "seasonal_naive", history=history)
    last_week = feeder_history(feeder).loc["2016-11-30"]
    np.testing.assert_allclose(fc.groupby("hour").p_kw.sum().to_numpy(), last_week.p_kw.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(fc.groupby("hour").q_kvar.sum().to_numpy(), last_week.q_kvar.to_numpy(), rtol=1e-12)


def test_hand_off_frames(history):
    da = day_ahead(TARGET, history=history)
    assert list(da.load.columns) == ["hour", "bus", "p_kw", "q_kvar"] and len(da.load) == 24 * 33
    assert sorted(da.load.bus.unique()) == list(range(1, 34))
    assert da.load.hour.min() == 0 and da.load.hour.max() == 23
    assert (da.load.p_kw >= 0).all()
    np.testing.assert_allclose(da.feeder.p_kw, da.load.groupby("hour").p_kw.sum(), rtol=1e-12)
    assert list(da.renewables.columns) == ["hour", "site", "availability_pu"]
    assert set(da.renewables.site) == {"pv", "wt"} and len(da.renewables) == 48
    assert da.renewables.availability_pu.between(0, 1).all()
    # PV is zero at night; the 7-day mean equals a hand computation
    pv = da.renewables[da.renewables.site == "pv"].set_index("hour").availability_pu
    assert pv.loc[0] == 0.0 and pv.loc[12] > 0.0
    d = history.index_of(TARGET)
    assert pv.loc[12] == pytest.approx(history.renewables[d - 7:d, 12, history.sites.index("pv")].mean())
    one = forecast_renewables(TARGET, window_days=1, history=history)
    wt_prev = history.renewables[d - 1, :, history.sites.index("wt")]
    np.testing.assert_array_equal(one[one.site == "wt"].availability_pu.to_numpy(), wt_prev)
    # ridge forecast of the default target day (regression value, stated tolerance 1 kW)
    assert da.feeder.p_kw.max() == pytest.approx(2967.9, abs=1.0)
    assert da.feeder.p_kw.idxmax() == 11


# --------------------------------------------------------------------------- backtest
def test_metrics_on_a_hand_made_backtest():
    rows = []
    for day, shift in (("2016-01-04", 10.0), ("2016-01-05", -20.0)):
        actual = np.full(24, 100.0)
        actual[18] = 200.0
        fc = actual + shift
        if day == "2016-01-05":
            fc[18], fc[20] = 100.0, 250.0                  # peak forecast 2 h late, 25 % too high
        rows.append(pd.DataFrame({"date": pd.Timestamp(day), "hour": range(24), "model": "m",
                                  "actual_kw": actual, "forecast_kw": fc}))
    m = backtest_metrics(pd.concat(rows)).iloc[0]
    ape = np.r_[np.full(23, 10.0), 5.0, np.full(22, 20.0), 50.0, 150.0] / 100
    assert m.mape_pct == pytest.approx(100 * ape.sum() / 48)
    se = np.r_[np.full(24, 100.0), np.full(22, 400.0), 100.0 ** 2, 150.0 ** 2]
    assert m.rmse_kw == pytest.approx(np.sqrt(se.mean()))
    assert m.peak_error_pct == pytest.approx((5.0 + 25.0) / 2)
    assert m.peak_hour_error_h == pytest.approx(1.0)
    assert m.n_days == 2


def test_daily_mape_on_a_hand_made_backtest():
    """MAPE per day (notebook 01's daily figure); their mean is the backtest's MAPE."""
    rows = []
    for day, fc in (("2016-01-04", np.full(24, 110.0)), ("2016-01-05", np.r_[np.full(12, 80.0), np.full(12, 150.0)])):
        for model, f in (("a", fc), ("b", np.full(24, 100.0))):
            rows.append(pd.DataFrame({"date": pd.Timestamp(day), "hour": range(24), "model": model,
                                      "actual_kw": 100.0, "forecast_kw": f}))
    detail = pd.concat(rows, ignore_index=True)
    daily = daily_mape(detail).set_index(["date", "model"]).mape_pct
    assert list(daily.index.get_level_values("model")) == ["a", "b", "a", "b"]
    assert daily[(pd.Timestamp("2016-01-04"), "a")] == pytest.approx(10.0)
    assert daily[(pd.Timestamp("2016-01-05"), "a")] == pytest.approx(35.0)   # (12·20 + 12·50) / 24
    assert (daily.xs("b", level="model") == 0.0).all()
    overall = backtest_metrics(detail).set_index("model").mape_pct
    assert daily.groupby(level="model").mean().to_dict() == pytest.approx(overall.to_dict())
    assert mape_pct([110.0, 90.0], [100.0, 100.0]) == pytest.approx(10.0)


def test_backtest_table_default_day(history):
    detail = backtest(TARGET, history=history)
    assert len(detail) == 60 * 24 * 2
    assert detail.date.min() == pd.Timestamp("2016-10-08") and detail.date.max() == pd.Timestamp("2016-12-06")
    m = backtest_metrics(detail).set_index("model")
    # regression values (documented in the notebook and README), tolerance 0.05 %-points / 1 kW
    assert m.loc["seasonal_naive", "mape_pct"] == pytest.approx(19.72, abs=0.05)
    assert m.loc["ridge", "mape_pct"] == pytest.approx(16.35, abs=0.05)
    assert m.loc["ridge", "rmse_kw"] == pytest.approx(284.3, abs=1.0)
    assert m.loc["ridge", "rmse_kw"] < m.loc["seasonal_naive", "rmse_kw"]
    assert choose_model(m.reset_index()) == "ridge"
    band = error_band(detail, "ridge")
    assert (band.lo_pu <= 0).all() and (band.hi_pu >= 0).all() and len(band) == 24
    assert day_ahead(TARGET, model="auto", history=history).model == "ridge"


def test_renewable_backtest(history):
    r = renewable_backtest(TARGET, history=history).set_index(["site", "window_days"])
    assert r.loc[("pv", 7), "rmse_pu"] < r.loc[("pv", 1), "rmse_pu"]
    assert r.loc[("pv", 7), "rmse_pu"] == pytest.approx(0.054, abs=0.001)
    assert (r.rmse_pu >= r.mae_pu).all()


# --------------------------------------------------------------------------- bad input
def test_target_day_outside_history(history):
    with pytest.raises(InputError, match=r"target_day' = '2017-01-05': outside the history: "
                                         r"must lie in 2016-01-01\.\.2016-12-31"):
        forecast_bus_load("2017-01-05", history=history)
    with pytest.raises(InputError, match="must be an ISO date"):
        forecast_bus_load("tomorrow", history=history)


def test_history_too_short_for_the_model(history):
    with pytest.raises(InputError) as exc:
        forecast_bus_load("2016-02-01", "ridge", train_days=56, history=history)
    msg = str(exc.value)
    assert "history too short" in msg and "needs 70 days" in msg and "only 31 are available" in msg
    assert "earliest allowed target day is 2016-03-11" in msg
    # seasonal naive needs one week only
    assert len(forecast_bus_load("2016-01-08", "seasonal_naive", history=history)) == 24 * 33
    with pytest.raises(InputError, match="earliest allowed target day is 2016-05-10"):
        check_params("2016-05-09", history=history)
    assert check_params("2016-05-10", history=history)["target_day"] == pd.Timestamp("2016-05-10")


def test_truncated_history_file_is_too_short():
    prof = load_profiles().loc[:"2016-02-09 23:45"]            # 40 days of data
    short = build_history(build_feeder(prof), None if False else
                          prof[["PV3", "WP4"]].set_axis(["pv", "wt"], axis=1).resample("1h").mean())
    assert len(short.dates) == 40
    with pytest.raises(InputError, match="only 39 are available"):
        forecast_classes(short, "2016-02-09", "ridge", train_days=28)
    with pytest.raises(InputError, match="outside the history: must lie in 2016-01-01..2016-02-09"):
        forecast_classes(short, "2016-03-01", "seasonal_naive")


@pytest.mark.parametrize("kw, text", [
    ({"forecast_model": "prophet"}, "field 'forecast_model' = 'prophet': must be one of"),
    ({"backtest_days": 30}, "field 'backtest_days' = 30: must be an integer in 60..200"),
    ({"train_days": 7}, "field 'train_days' = 7: must be an integer in 28..180"),
    ({"train_days": 56.0}, "field 'train_days' = 56.0: must be an integer"),
    ({"renewable_window_days": True}, "field 'renewable_window_days' = True"),
])
def test_parameter_errors(history, kw, text):
    with pytest.raises(InputError, match=None) as exc:
        check_params(TARGET, history=history, **kw)
    assert text in str(exc.value) and "notebook parameters" in str(exc.value)


def test_default_parameters_are_valid(history):
    import yaml

    from evsched.paths import PARAMS
    p = yaml.safe_load((PARAMS / "default.yaml").read_text())
    out = check_params(p["target_day"], p["forecast_model"], p["backtest_days"], p["train_days"],
                       p["renewable_window_days"], history=history)
    assert out["target_day"] == pd.Timestamp("2016-12-07")


def test_a_run_computes_the_forecast_once_and_never_serves_other_arguments(history, tmp_path, monkeypatch):
    """Within a batch run (RUN_CACHE_ENV set by run_study) day_ahead is computed once and read
    back; other arguments or another history are computed afresh; without the variable nothing
    is written."""
    from evsched import forecast
    from evsched.paths import RUN_CACHE_ENV

    monkeypatch.delenv(RUN_CACHE_ENV, raising=False)
    plain = day_ahead("2016-12-07", history=history)
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv(RUN_CACHE_ENV, str(tmp_path))
    first = day_ahead("2016-12-07", history=history)
    assert len(list(tmp_path.glob("day_ahead-*.pkl"))) == 1
    calls = []
    real = forecast.forecast_bus_load
    monkeypatch.setattr(forecast, "forecast_bus_load", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = day_ahead("2016-12-07", history=history)
    assert calls == []  # read back, not recomputed
    for a, b in ((plain, first), (first, again)):
        pd.testing.assert_frame_equal(a.load, b.load)
        pd.testing.assert_frame_equal(a.renewables, b.renewables)
    other_day = day_ahead("2016-12-08", history=history)
    assert len(calls) == 1 and not other_day.load.equals(first.load)
    day_ahead("2016-12-07", history=history, resolution_min=15)
    scaled = dataclasses.replace(history, load=history.load * 1.1)
    bigger = day_ahead("2016-12-07", history=scaled)
    assert len(calls) == 3
    assert bigger.load.p_kw.sum() > 1.09 * first.load.p_kw.sum()  # its own forecast, not the cached one
