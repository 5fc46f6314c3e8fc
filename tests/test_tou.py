"""TOU periods: the documented rule on a hand-made curve, contiguity for any curve, prices, parameters."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsched.errors import InputError
from evsched.tou import (
    DEFAULT_RATIOS,
    PERIODS,
    blocks,
    check_params,
    classify_hours,
    day_ahead_tou,
    net_load_kw,
    tou_table,
)

# Hand-made curve (kW). Worked through the rule in the module docstring by hand:
#  * 24 distinct values; Q(0.35) lies between the 9th and 10th smallest → valley = the 9
#    lowest hours {0..7, 23}; Q(0.75) lies between the 18th and 19th → peak = the 6 highest
#    hours {16..21}; flat = {8..15, 22}.
#  * hour 22 (260 kW) is a 1-hour flat block between peak (mean 446) and valley (mean 122):
#    |260-122| < |260-446| → it becomes valley; valley block = 22..7 (10 h).
#  * sharp peak (2 h) inside the 16..21 block, offsets leaving 0 or ≥ 2 h: {16,17} 328.5,
#    {18,19} 510, {20,21} 500 → {18,19}.
#  * deep valley (2 h) inside 22..7, best window {2,3} (mean 91 kW).
CURVE = [100, 95, 90, 92, 94, 98, 150, 200, 250, 300, 301, 302, 303, 304, 305, 306,
         307, 350, 500, 520, 510, 490, 260, 180]
EXPECTED = (["valley"] * 2 + ["deep_valley"] * 2 + ["valley"] * 4 + ["flat"] * 8
            + ["peak"] * 2 + ["sharp_peak"] * 2 + ["peak"] * 2 + ["valley"] * 2)


def test_hand_made_curve_gives_expected_periods():
    assert list(classify_hours(CURVE)) == EXPECTED
    b = blocks(EXPECTED)
    assert b[["period", "start_hour", "length_h"]].values.tolist() == [
        ["deep_valley", 2, 2], ["valley", 4, 4], ["flat", 8, 8], ["peak", 16, 2],
        ["sharp_peak", 18, 2], ["peak", 20, 2], ["valley", 22, 4]]


def test_hand_made_curve_without_sharp_and_deep_and_with_longer_blocks():
    three = classify_hours(CURVE, sharp_peak_h=0, deep_valley_h=0)
    assert list(three) == ["valley"] * 8 + ["flat"] * 8 + ["peak"] * 6 + ["valley"] * 2
    # min_block_h = 1 keeps the single flat hour 22
    one = classify_hours(CURVE, min_block_h=1, sharp_peak_h=0, deep_valley_h=0)
    assert one[22] == "flat" and list(one[:8]) == ["valley"] * 8


def test_prices_follow_ratios():
    t = tou_table(CURVE, flat_price_per_kwh=0.5)
    assert list(t.columns) == ["hour", "period", "price_per_kwh"] and t.hour.tolist() == list(range(24))
    expected = {"sharp_peak": 1.025, "peak": 0.925, "flat": 0.5, "valley": 0.2, "deep_valley": 0.1}
    assert t.price_per_kwh.tolist() == pytest.approx([expected[p] for p in EXPECTED])
    t2 = tou_table(CURVE, flat_price_per_kwh=1.0, ratios={"peak": 1.5})
    assert t2.loc[16, "price_per_kwh"] == 1.5 and t2.loc[18, "price_per_kwh"] == DEFAULT_RATIOS["sharp_peak"]


def test_flat_curve_is_all_flat_and_wraps_midnight():
    assert set(classify_hours(np.full(24, 7.0))) == {"flat"}
    # a valley across midnight is one block on the circle
    curve = np.r_[np.full(5, 1.0), np.full(15, 5.0), np.full(4, 1.0)] + np.arange(24) * 1e-3
    lab = classify_hours(curve, sharp_peak_h=0, deep_valley_h=0)
    b = blocks(lab)
    valley = b[b.period == "valley"]
    assert len(valley) == 1 and valley.start_hour.iloc[0] == 20 and valley.length_h.iloc[0] == 9


def test_window_that_does_not_fit_is_skipped_with_a_warning(caplog):
    curve = np.r_[np.full(21, 1.0), 10.0, 11.0, 1.0] + np.arange(24) * 1e-3   # peak block of 2 h
    with caplog.at_level(logging.WARNING, logger="evsched.tou"):
        lab = classify_hours(curve, peak_quantile=0.95, sharp_peak_h=3, min_block_h=2)
    assert "sharp_peak" not in set(lab)
    assert "no peak block admits a 3-hour sharp_peak window" in caplog.text


@settings(max_examples=150, deadline=None)
@given(curve=st.lists(st.floats(-1e3, 1e4, allow_nan=False), min_size=24, max_size=24),
       min_block=st.integers(1, 4), sharp=st.integers(0, 4), deep=st.integers(0, 4))
def test_blocks_are_contiguous_and_long_enough_for_any_curve(curve, min_block, sharp, deep):
    sharp = 0 if sharp < min_block else sharp
    deep = 0 if deep < min_block else deep
    lab = classify_hours(curve, min_block_h=min_block, sharp_peak_h=sharp, deep_valley_h=deep)
    assert len(lab) == 24 and set(lab) <= set(PERIODS)
    b = blocks(lab)
    assert b.length_h.sum() == 24
    if len(b) > 1:
        assert (b.length_h >= min_block).all()
    for special, width in (("sharp_peak", sharp), ("deep_valley", deep)):
        n = int((lab == special).sum())
        assert n in (0, width)
        assert (b.period == special).sum() <= 1          # one contiguous window at most


def test_net_load():
    feeder = pd.DataFrame({"hour": range(24), "p_kw": np.full(24, 1000.0)})
    ren = pd.DataFrame({"hour": np.repeat(range(24), 2), "site": ["pv", "wt"] * 24,
                        "availability_pu": np.tile([0.5, 0.25], 24)})
    np.testing.assert_allclose(net_load_kw(feeder, ren, pv_kw=400, wt_kw=800), np.full(24, 600.0))


def test_day_ahead_tou_default_day():
    t = day_ahead_tou("2016-12-07")
    assert t.period.tolist() == (["valley"] * 3 + ["deep_valley"] * 2 + ["valley"] * 2 + ["peak"] * 3
                                 + ["sharp_peak"] * 2 + ["peak"] * 2 + ["flat"] * 8 + ["valley"] * 2)
    assert t.price_per_kwh.max() == pytest.approx(0.65 * 2.05)
    assert t.price_per_kwh.min() == pytest.approx(0.65 * 0.2)


@pytest.mark.parametrize("kw, text", [
    ({"flat_price_per_kwh": 0}, "field 'flat_price_per_kwh' = 0: must be in (0, 10] currency/kWh"),
    ({"tou_ratio_peak": 0.9}, "field 'tou_ratio_peak' = 0.9: must be in [1, 10]"),
    ({"tou_ratio_valley": 1.2}, "field 'tou_ratio_valley' = 1.2: must be in (0, 1]"),
    ({"tou_ratio_deep_valley": 0.5}, "field 'tou_ratio_deep_valley' = 0.5: must not exceed tou_ratio_valley = 0.4"),
    ({"tou_ratio_sharp_peak": 1.5}, "field 'tou_ratio_sharp_peak' = 1.5: must be at least tou_ratio_peak = 1.85"),
    ({"tou_valley_quantile": 0.8}, "field 'tou_peak_quantile' = 0.75: must satisfy tou_valley_quantile (0.8)"),
    ({"tou_min_block_h": 0}, "field 'tou_min_block_h' = 0: must be an integer in 1..8"),
    ({"tou_min_block_h": 3}, "field 'tou_sharp_peak_h' = 2: must be an integer 0 or in 3..8"),
    ({"tou_deep_valley_h": 2.5}, "field 'tou_deep_valley_h' = 2.5: must be an integer"),
    ({"tou_pv_kw": -1.0}, "field 'tou_pv_kw' = -1.0: must be in [0, 20000] kW"),
    ({"tou_wt_kw": "a lot"}, "field 'tou_wt_kw' = 'a lot'"),
])
def test_parameter_errors(kw, text):
    with pytest.raises(InputError) as exc:
        check_params(**kw)
    assert text in str(exc.value) and "notebook parameters" in str(exc.value)


def test_default_parameters_are_valid():
    import yaml

    from evsched.paths import PARAMS
    p = yaml.safe_load((PARAMS / "default.yaml").read_text())
    out = check_params(**{k: v for k, v in p.items() if k.startswith("tou_") or k == "flat_price_per_kwh"})
    assert out["ratios"] == DEFAULT_RATIOS
    assert out["rule"] == {"peak_quantile": 0.75, "valley_quantile": 0.35, "min_block_h": 2,
                           "sharp_peak_h": 2, "deep_valley_h": 2}


def test_bad_curve():
    with pytest.raises(InputError, match="must be 24 finite hourly values"):
        classify_hours(np.ones(23))
    with pytest.raises(InputError, match="must be 24 finite hourly values"):
        classify_hours([np.nan] + [1.0] * 23)
