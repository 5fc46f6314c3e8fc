"""Time-of-use (TOU) periods and prices from a 24-hour forecast curve.

Rule (hours 0..23, the day treated as a circle so a valley may run across midnight)
-----------------------------------------------------------------------------------
1. **Levels.** With :math:`L_h` the forecast [kW], :math:`Q_v` and :math:`Q_p` its
   ``valley_quantile`` and ``peak_quantile`` quantiles (NumPy linear interpolation over the
   24 values): valley if :math:`L_h \\le Q_v`, else peak if :math:`L_h \\ge Q_p`, else flat.
   A curve whose range is below 1e-9 of its magnitude is all flat.
2. **Minimum block length.** While some block (maximal run of equal labels on the circle)
   is shorter than ``min_block_h`` and the day has more than one block: take the shortest
   such block (earliest start on ties) and relabel it as the neighbouring block whose mean
   load is closest to its own (the earlier neighbour on ties). Each step removes at least
   one block, so the loop ends; afterwards every block lasts ≥ ``min_block_h`` hours.
3. **Sharp peak / deep valley (optional).** Inside the peak blocks, the window of
   ``sharp_peak_h`` consecutive hours with the highest mean load becomes sharp-peak; inside
   the valley blocks the ``deep_valley_h`` window with the lowest mean load becomes
   deep-valley. A window is only allowed where the rest of its block is empty or still at
   least ``min_block_h`` long, so contiguity is kept. If no block admits a window, none is
   set and a warning is logged. ``0`` disables.
4. **Prices.** :math:`\\pi_h = \\pi_{flat}\\, r_{period(h)}` [currency/kWh] with ratios
   :math:`r` relative to flat (= 1). Defaults (:data:`DEFAULT_RATIOS`) follow the Zhejiang
   rule quoted in the study: sharp-peak 2.05, peak 1.85, flat 1, valley 0.4, deep-valley 0.2.

Output: the tidy table ``hour, period, price_per_kwh`` (:func:`tou_table`).

Time resolution: the tariff stays in whole clock hours
------------------------------------------------------
At ``resolution_min: 15`` the forecast has 96 quarter-hours, but the TOU periods remain
**whole clock hours** (24 rows, ``hour`` 0..23): a curve of 24·n sub-hourly values is first
averaged to hours (:func:`hourly_curve`; the 15-minute forecast averages exactly to the
hourly one, so the periods and prices are those of the hourly study). Reasons: tariffs are
published and understood in clock hours (the Zhejiang rule the ratios come from is set in
hours); the 2-hour minimum block and windows are hour rules; owners' V2G offers follow whole
peak hours (:func:`evsched.fleet.peak_hours_from_tou`), so the fleet is the same at both
resolutions and a 15-minute study differs from the hourly one by its time step only.
:func:`tou_on_grid` spreads the table onto a finer step grid when a per-step price is needed.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from evsched.errors import input_error
from evsched.schema import defaults as _schema_defaults

logger = logging.getLogger(__name__)

PERIODS = ("deep_valley", "valley", "flat", "peak", "sharp_peak")
DEFAULT_RATIOS = {"sharp_peak": 2.05, "peak": 1.85, "flat": 1.0, "valley": 0.4, "deep_valley": 0.2}
PARAM_SOURCE = "notebook parameters"
_D = _schema_defaults("tou")


def blocks(periods) -> pd.DataFrame:
    """Maximal runs of equal labels on the 24-hour circle.

    Returns ``period, start_hour, length_h, hours`` (a run crossing midnight starts at its
    first hour before midnight); a day with one label is a single block starting at 0.
    """
    lab = list(periods)
    n = len(lab)
    if all(x == lab[0] for x in lab):
        return pd.DataFrame({"period": [lab[0]], "start_hour": [0], "length_h": [n],
                             "hours": [list(range(n))]})
    starts = [h for h in range(n) if lab[h] != lab[h - 1]]
    out = []
    for i, s in enumerate(starts):
        e = starts[(i + 1) % len(starts)]
        length = (e - s) % n
        out.append({"period": lab[s], "start_hour": s, "length_h": length,
                    "hours": [(s + k) % n for k in range(length)]})
    return pd.DataFrame(out)


def _merge_short_blocks(labels: np.ndarray, load: np.ndarray, min_block_h: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        b = blocks(labels)
        short = b[b.length_h < min_block_h]
        if len(b) == 1 or short.empty:
            return labels
        i = short.sort_values(["length_h", "start_hour"], kind="stable").index[0]
        me = load[b.at[i, "hours"]].mean()
        prev_i, next_i = (i - 1) % len(b), (i + 1) % len(b)
        d_prev = abs(load[b.at[prev_i, "hours"]].mean() - me)
        d_next = abs(load[b.at[next_i, "hours"]].mean() - me)
        target = prev_i if d_prev <= d_next else next_i
        labels[b.at[i, "hours"]] = b.at[target, "period"]


def _place_window(labels: np.ndarray, load: np.ndarray, inside: str, new: str, width: int,
                  min_block_h: int, highest: bool) -> np.ndarray:
    if width == 0:
        return labels
    best, best_score = None, None
    for _, blk in blocks(labels).iterrows():
        if blk.period != inside or blk.length_h < width:
            continue
        for off in range(blk.length_h - width + 1):
            left, right = off, blk.length_h - width - off
            if any(0 < r < min_block_h for r in (left, right)):
                continue
            hours = blk.hours[off:off + width]
            score = load[hours].mean() * (1 if highest else -1)
            if best_score is None or score > best_score + 1e-12:
                best, best_score = hours, score
    if best is None:
        logger.warning("TOU: no %s block admits a %d-hour %s window with min_block_h=%d; none set",
                       inside, width, new, min_block_h)
        return labels
    labels = labels.copy()
    labels[best] = new
    return labels


def hourly_curve(values) -> np.ndarray:
    """24 hourly values from a curve of 24 hourly or 24·n sub-hourly step values (each hour
    the mean of its n steps: the hourly average power)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1 and v.size > 24 and v.size % 24 == 0:
        return v.reshape(24, -1).mean(axis=1)
    return v


def tou_on_grid(table: pd.DataFrame, dt_h: float) -> pd.DataFrame:
    """The hourly TOU table on a grid of ``dt_h``-hour steps (``hour`` = the step's start,
    0, 0.25, ...): every step carries its clock hour's period and price."""
    from evsched.sessions import step_hours

    hours = step_hours(dt_h)
    t = table.set_index("hour").reindex(np.floor(np.asarray(hours, float)).astype(int))
    return pd.DataFrame({"hour": hours, "period": t["period"].to_numpy(),
                         "price_per_kwh": t["price_per_kwh"].to_numpy()})


def classify_hours(load_kw, *, peak_quantile: float = 0.75, valley_quantile: float = 0.35,
                   min_block_h: int = 2, sharp_peak_h: int = 2, deep_valley_h: int = 2) -> np.ndarray:
    """Label each of the 24 hours with a period of :data:`PERIODS` (rule in the module docstring).

    Parameters
    ----------
    load_kw : 24 values of the forecast curve [kW] (hours 0..23), or 24·n sub-hourly
        values (e.g. 96 quarter-hours), averaged to hours first (:func:`hourly_curve`)
    peak_quantile, valley_quantile : quantile levels in (0, 1), valley < peak
    min_block_h : minimum block length [h], 1..8
    sharp_peak_h, deep_valley_h : window lengths [h], 0 (off) or ≥ ``min_block_h``
    """
    load = hourly_curve(load_kw)
    if load.shape != (24,) or not np.isfinite(load).all():
        raise input_error("TOU curve", "argument", "load_kw", f"shape {load.shape}",
                          "must be 24 finite hourly values (hours 0..23) or 24·n sub-hourly values")
    if load.max() - load.min() <= 1e-9 * max(1.0, np.abs(load).max()):
        return np.array(["flat"] * 24, dtype=object)
    q_v, q_p = np.quantile(load, valley_quantile), np.quantile(load, peak_quantile)
    labels = np.where(load <= q_v, "valley", np.where(load >= q_p, "peak", "flat")).astype(object)
    labels = _merge_short_blocks(labels, load, min_block_h)
    labels = _place_window(labels, load, "peak", "sharp_peak", sharp_peak_h, min_block_h, True)
    labels = _place_window(labels, load, "valley", "deep_valley", deep_valley_h, min_block_h, False)
    return labels


def tou_table(load_kw, *, flat_price_per_kwh: float = 0.65, ratios: dict | None = None,
              **rule) -> pd.DataFrame:
    """Tidy TOU table ``hour, period, price_per_kwh`` (24 whole clock hours) for a 24-hour
    curve of 24 hourly or 24·n sub-hourly values.

    ``price_per_kwh = flat_price_per_kwh * ratios[period]`` [currency/kWh], rounded to 1e-9
    to drop floating-point noise; ``rule`` are the
    keyword arguments of :func:`classify_hours`.
    """
    r = dict(DEFAULT_RATIOS if ratios is None else {**DEFAULT_RATIOS, **ratios})
    periods = classify_hours(load_kw, **rule)
    return pd.DataFrame({"hour": np.arange(24), "period": periods,
                         "price_per_kwh": [round(flat_price_per_kwh * r[p], 9) for p in periods]})


def net_load_kw(feeder: pd.DataFrame, renewables: pd.DataFrame, pv_kw: float = 0.0,
                wt_kw: float = 0.0) -> np.ndarray:
    """Net feeder load [kW] per step: ``p_kw − pv_kw·a_pv − wt_kw·a_wt`` (``a`` availability
    p.u.), on the frames' grid (24 hours, or the 96 quarter-hours of a 15-minute forecast)."""
    steps = feeder["hour"].unique()
    grid = range(24) if len(steps) <= 24 else np.sort(steps)
    a = renewables.pivot(index="hour", columns="site", values="availability_pu").reindex(grid)
    p = feeder.set_index("hour")["p_kw"].reindex(grid).to_numpy()
    return p - pv_kw * a["pv"].to_numpy() - wt_kw * a["wt"].to_numpy()


def check_params(flat_price_per_kwh: float = _D["flat_price_per_kwh"],
                 tou_ratio_sharp_peak: float = _D["tou_ratio_sharp_peak"],
                 tou_ratio_peak: float = _D["tou_ratio_peak"], tou_ratio_valley: float = _D["tou_ratio_valley"],
                 tou_ratio_deep_valley: float = _D["tou_ratio_deep_valley"],
                 tou_peak_quantile: float = _D["tou_peak_quantile"],
                 tou_valley_quantile: float = _D["tou_valley_quantile"], tou_min_block_h: int = _D["tou_min_block_h"],
                 tou_sharp_peak_h: int = _D["tou_sharp_peak_h"], tou_deep_valley_h: int = _D["tou_deep_valley_h"],
                 tou_pv_kw: float = _D["tou_pv_kw"], tou_wt_kw: float = _D["tou_wt_kw"]) -> dict:
    """Validate the TOU parameters of notebook 02; return ``ratios`` and ``rule`` dicts.

    Defaults, ranges and rules (e.g. ``0 < deep_valley ≤ valley ≤ 1 ≤ peak ≤ sharp_peak ≤ 10``,
    ``0 < valley_quantile < peak_quantile < 1``) are those of :class:`evsched.schema.TOU`
    (``evsched params``); a violation raises :class:`InputError` naming the parameter.
    """
    from evsched.schema import validate_topic

    p = validate_topic("tou", {k: v for k, v in locals().items() if k in _D}, source=PARAM_SOURCE)
    return {"flat_price_per_kwh": p.flat_price_per_kwh,
            "ratios": {"sharp_peak": p.tou_ratio_sharp_peak, "peak": p.tou_ratio_peak, "flat": 1.0,
                       "valley": p.tou_ratio_valley, "deep_valley": p.tou_ratio_deep_valley},
            "rule": {"peak_quantile": p.tou_peak_quantile, "valley_quantile": p.tou_valley_quantile,
                     "min_block_h": p.tou_min_block_h, "sharp_peak_h": p.tou_sharp_peak_h,
                     "deep_valley_h": p.tou_deep_valley_h},
            "pv_kw": p.tou_pv_kw, "wt_kw": p.tou_wt_kw}


def day_ahead_tou(target_day, model: str = "ridge", train_days: int = 56, *,
                  flat_price_per_kwh: float = 0.65, ratios: dict | None = None,
                  pv_kw: float = 0.0, wt_kw: float = 0.0, renewable_window_days: int = 7,
                  resolution_min: int = 60, **rule) -> pd.DataFrame:
    """TOU table for a target day from the day-ahead forecast (what scenarios call).

    The curve is the forecast net feeder load ``p_kw − pv_kw·a_pv − wt_kw·a_wt`` (gross load
    with the defaults ``pv_kw = wt_kw = 0``) at ``resolution_min``, averaged to hours; see
    :func:`tou_table`.
    """
    from evsched.forecast import day_ahead

    fc = day_ahead(target_day, model=model, train_days=train_days,
                   renewable_window_days=renewable_window_days, resolution_min=resolution_min)
    curve = net_load_kw(fc.feeder, fc.renewables, pv_kw, wt_kw)
    return tou_table(curve, flat_price_per_kwh=flat_price_per_kwh, ratios=ratios, **rule)
