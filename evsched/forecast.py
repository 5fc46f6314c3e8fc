"""Day-ahead forecasts of bus load and renewable availability, and their rolling backtest.

Setting
-------
The dispatch centre forecasts, at the end of day :math:`d-1`, the 24 hourly values of day
:math:`d` (the *target day*) from history strictly before :math:`d`. Loads are forecast per
SimBench load class (7 normalised series :math:`\\tilde x_c`, see :mod:`evsched.history`) and
mapped linearly to the buses, so the feeder forecast is exactly the sum of the bus forecasts:

.. math::  \\hat p_b(h) = \\sum_c a_{bc}\\, \\hat{\\tilde x}_c(h), \\qquad
           \\hat q_b(h) = \\sum_c a_{bc} \\tan\\varphi_c\\, \\hat{\\tilde x}_c(h).

Models (``model=``)
-------------------
``seasonal_naive``
    same weekday last week: :math:`\\hat y_{d,h} = y_{d-7,h}`.
``ridge``
    scikit-learn :class:`~sklearn.linear_model.Ridge` (α = 1), refitted for every target day
    on the ``train_days`` days before it: one multi-output fit predicts all classes, all 24
    hours pooled (rows = day × hour). Features of (day j, hour h), for every class:
    :math:`y_{j-1,h}`, :math:`y_{j-7,h}`, :math:`y_{s(j),h}` with :math:`s(j)` the latest
    earlier day of the same *day type* (working day, Saturday, Sunday/holiday), and the mean
    of day :math:`j-1`; plus 72 one-hot hour × day-type dummies. Day types follow the German
    calendar the SimBench profiles were built with (:func:`day_types`); the calendar is known
    in advance, so it is not peeking. Forecasts are clipped at 0.
``auto``
    whichever of the two has the lower backtest MAPE before the target day.

Renewables: availability [p.u. of installed kW] is forecast as the mean of the same hour
over the last ``window_days`` days (``window_days = 1`` is persistence). Without a weather
forecast this is the honest statistical baseline; its backtest error is reported.

15-minute forecasts (``resolution_min=15``)
------------------------------------------
The models above forecast **hourly** values (the backtest, TOU and every hourly number are
unchanged); the 96 quarter-hours are derived so that **their mean over each hour is exactly
the hourly forecast** (energy-consistent, tested):

* load classes: :math:`\\hat x_c(h, q) = \\hat x_c(h)\\, S_c(h, q) / \\bar S_c(h)` with
  :math:`S_c` the mean 15-minute profile of the shape days (:func:`shape_days`: the
  :data:`SHAPE_DAYS` latest days of the target's day type in the :data:`SHAPE_LOOKBACK_DAYS`
  days before it) and :math:`\\bar S_c(h)` its mean over hour h (:func:`intra_hour`). Where
  :math:`\\bar S_c(h) \\approx 0` or the profile is negative in that hour, the deviation is
  added instead, :math:`\\hat x_c(h) + S_c(h, q) - \\bar S_c(h)`. Non-negative classes stay
  non-negative;
* renewables: the mean of the same quarter-hour over the last ``window_days`` days (the mean
  of means: exactly the hourly forecast over each hour). A history without 15-minute
  renewables repeats the hourly value.

Only days before the target day are read (the same no-peeking rule).

No peeking
----------
Every forecast function receives the history *sliced* to the days before the target day
(``history.days_before(d)``) and cannot index the target day; a test perturbs the target
day's actuals and checks that the forecast is bit-identical.

Metrics (rolling backtest over the ``days`` days before the target day, feeder level)
----------------------------------------------------------------------------------------
``mape_pct`` :math:`= 100\\,\\mathrm{mean}|\\hat P - P|/P`; ``rmse_kw``
:math:`= \\sqrt{\\mathrm{mean}(\\hat P - P)^2}`; ``peak_error_pct`` = mean over days of
:math:`100|\\max_h \\hat P - \\max_h P|/\\max_h P`; ``peak_hour_error_h`` = mean over days of
:math:`|\\arg\\max_h \\hat P - \\arg\\max_h P|` [h].
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from evsched.errors import input_error
from evsched.history import Feeder, build_feeder, hourly, renewable_history
from evsched.paths import RUN_CACHE_ENV
from evsched.schema import defaults as _schema_defaults
from evsched.sessions import step_hours

MODELS = ("seasonal_naive", "ridge")
LAG_DAYS = 14          # days of history the features of one training day may look back
RIDGE_ALPHA = 1.0
HOURS = np.arange(24)
SHAPE_DAYS = 4
"""Days whose mean 15-minute profile shapes the quarter-hours of a forecast hour."""
SHAPE_LOOKBACK_DAYS = 28
"""The shape days are the latest days of the target's day type within this many days."""
PARAM_SOURCE = "notebook parameters"
_D = _schema_defaults("forecast")


# --------------------------------------------------------------------------- calendar
def _easter(year: int) -> pd.Timestamp:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    return pd.Timestamp(year=year, month=month, day=day)


def public_holidays(year: int) -> pd.DatetimeIndex:
    """Holidays treated as Sundays in the SimBench profiles (German federal holidays plus
    Corpus Christi and All Saints', as observed in the G1-A office profile of 2016)."""
    e = _easter(year)
    fixed = [f"{year}-01-01", f"{year}-05-01", f"{year}-10-03", f"{year}-11-01",
             f"{year}-12-25", f"{year}-12-26"]
    moving = [e + pd.Timedelta(days=k) for k in (-2, 1, 39, 50, 60)]
    return pd.DatetimeIndex(sorted(pd.to_datetime(fixed).tolist() + moving))


def day_types(dates: pd.DatetimeIndex) -> np.ndarray:
    """0 = working day, 1 = Saturday (also 24 and 31 December), 2 = Sunday or holiday."""
    dates = pd.DatetimeIndex(dates).normalize()
    hol = set()
    for y in np.unique(dates.year):
        hol |= set(public_holidays(int(y)))
    t = np.where(dates.dayofweek == 5, 1, 0)
    eve = (dates.month == 12) & np.isin(dates.day, (24, 31))
    t = np.where(eve, 1, t)
    t = np.where((dates.dayofweek == 6) | dates.isin(list(hol)), 2, t)
    return t.astype(int)


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """Daily-matrix view of the hourly history (CET days).

    Attributes
    ----------
    dates : DatetimeIndex of days
    load : ndarray (day, hour, class) of normalised class profiles x̃
    renewables : ndarray (day, hour, site) availability [p.u.]
    classes, sites : names along the last axes
    day_type : ndarray (day,) from :func:`day_types`
    feeder : the :class:`~evsched.history.Feeder` mapping classes to buses
    load_15min : ndarray (day, 96, class) of the 15-minute class profiles (hourly means =
        ``load``), None if the history has no 15-minute data
    renewables_15min : ndarray (day, 96, site) 15-minute availability, or None
    """

    dates: pd.DatetimeIndex
    load: np.ndarray
    renewables: np.ndarray
    classes: list
    sites: list
    day_type: np.ndarray
    feeder: Feeder
    load_15min: np.ndarray | None = None
    renewables_15min: np.ndarray | None = None

    def index_of(self, target_day, *, need_days: int = 0, what: str = "") -> int:
        """Index of ``target_day``; error if outside the history or fewer than ``need_days``
        days of history precede it."""
        try:
            day = pd.Timestamp(target_day).normalize()
        except (ValueError, TypeError):
            raise input_error(PARAM_SOURCE, "target day", "target_day", target_day,
                              "must be an ISO date 'YYYY-MM-DD'") from None
        first, last = self.dates[0], self.dates[-1]
        if day < first or day > last:
            raise input_error(PARAM_SOURCE, "target day", "target_day", day.strftime("%Y-%m-%d"),
                              f"outside the history: must lie in {first:%Y-%m-%d}..{last:%Y-%m-%d}")
        d = int((day - first).days)
        if d < need_days:
            earliest = first + pd.Timedelta(days=need_days)
            raise input_error(PARAM_SOURCE, "target day", "target_day", day.strftime("%Y-%m-%d"),
                              f"history too short: {what} needs {need_days} days of history before "
                              f"the target day but only {d} are available (history starts "
                              f"{first:%Y-%m-%d}); the earliest allowed target day is {earliest:%Y-%m-%d}")
        return d

    def days_before(self, d: int) -> "History":
        """The history truncated to the days strictly before index ``d`` (no target day)."""
        cut = (lambda a: None if a is None else a[:d])
        return History(self.dates[:d], self.load[:d], self.renewables[:d], self.classes, self.sites,
                       self.day_type[:d], self.feeder, cut(self.load_15min), cut(self.renewables_15min))


def _is_15min(frame: pd.DataFrame) -> bool:
    idx = frame.index
    return isinstance(idx, pd.DatetimeIndex) and len(idx) > 1 and idx[1] - idx[0] == pd.Timedelta("15min")


def _quarters(frame: pd.DataFrame | None, index: pd.DatetimeIndex, n: int,
              columns=None) -> np.ndarray | None:
    """A 15-minute frame on the days of an hourly ``index`` as (day, 96, column), or None."""
    if frame is None or not _is_15min(frame) or (columns is not None and set(columns) - set(frame.columns)):
        return None
    q = pd.date_range(index[0], periods=n * 96, freq="15min", tz=index.tz)
    vals = frame.reindex(q)[list(frame.columns if columns is None else columns)]
    return None if vals.isna().to_numpy().any() else vals.to_numpy().reshape(n, 96, -1)


def build_history(feeder: Feeder | None = None, renewables: pd.DataFrame | None = None,
                  renewables_15min: pd.DataFrame | None = None) -> History:
    """Arrange the feeder's class profiles and the renewables as day × hour arrays (and day ×
    quarter-hour arrays for 15-minute forecasts).

    ``renewables`` may be hourly or 15-minute (then its hourly means are used for the hourly
    arrays); ``renewables_15min`` gives the 15-minute availability beside an hourly frame.
    Default: the extract's renewables at 15 minutes.
    """
    feeder = build_feeder() if feeder is None else feeder
    if renewables is None and renewables_15min is None:
        renewables_15min = renewable_history(resolution="15min")
    if renewables is not None and renewables_15min is None and _is_15min(renewables):
        renewables_15min = renewables
    if renewables is None or _is_15min(renewables):
        renewables = hourly(renewables_15min)
    xh = feeder.class_hourly
    n = len(xh) // 24
    if n * 24 != len(xh) or xh.index[0].hour != 0:
        raise input_error("<history>", f"timestamp {xh.index[0]}", "time", len(xh),
                          "the hourly history must consist of whole days starting at 00:00")
    dates = pd.DatetimeIndex(xh.index[::24]).normalize()
    ren = renewables.reindex(xh.index)
    ren15 = _quarters(renewables_15min, xh.index, n, list(renewables.columns))
    return History(dates=dates, load=xh.to_numpy().reshape(n, 24, -1),
                   renewables=ren.to_numpy().reshape(n, 24, -1), classes=list(xh.columns),
                   sites=list(renewables.columns), day_type=day_types(dates), feeder=feeder,
                   load_15min=_quarters(feeder.class_15min, xh.index, n, list(xh.columns)),
                   renewables_15min=ren15)


@functools.lru_cache(maxsize=1)
def _default_history() -> History:
    return build_history()


def default_history() -> History:
    """The cached history of the default extract, mix and IEEE-33 feeder."""
    return _default_history()


# --------------------------------------------------------------------------- models
def min_history_days(model: str, train_days: int) -> int:
    """Days of history a model needs before the day it forecasts."""
    return 7 if model == "seasonal_naive" else train_days + LAG_DAYS


def same_type_lags(day_type: np.ndarray) -> np.ndarray:
    """For each day j, the index of the latest earlier day of the same day type
    (at most 14 days back, else j-7; negative for the first days)."""
    n = len(day_type)
    out = np.arange(n) - 7
    for j in range(n):
        for k in range(1, LAG_DAYS + 1):
            if j - k >= 0 and day_type[j - k] == day_type[j]:
                out[j] = j - k
                break
    return out


def _features(y: np.ndarray, day_type: np.ndarray, lags: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Ridge features for ``days`` of series ``y`` (day × hour × k): shape (day, hour, k, 76).

    Columns: y[j-1,h], y[j-7,h], y[s(j),h], mean_h y[j-1,h], 72 hour × day-type dummies.
    Only rows of ``y`` before each day j are read (j-1, j-7, s(j) < j).
    """
    lag1, lag7, same = y[days - 1], y[days - 7], y[lags[days]]
    mean1 = np.broadcast_to(lag1.mean(axis=1, keepdims=True), lag1.shape)
    dummies = np.zeros((len(days), 24, 72))
    dummies[np.arange(len(days))[:, None], HOURS[None, :], (day_type[days] * 24)[:, None] + HOURS[None, :]] = 1.0
    k = y.shape[2]
    dummies = np.broadcast_to(dummies[:, :, None, :], (len(days), 24, k, 72))
    return np.concatenate([np.stack([lag1, lag7, same, mean1], axis=-1), dummies], axis=-1)


def _design(f: np.ndarray) -> np.ndarray:
    """Stack per-class lag features and the shared dummies into one design matrix
    (day·hour × (4·k + 72)), so one multi-output Ridge fit serves all k classes."""
    d, h, k, _ = f.shape
    lags = f[..., :4].reshape(d * h, k * 4)
    return np.hstack([lags, f[:, :, 0, 4:].reshape(d * h, 72)])


def _forecast_series(past: np.ndarray, day_type: np.ndarray, model: str, train_days: int) -> np.ndarray:
    """Forecast the next day (24 × k) of ``past`` (day × hour × k) — ``past`` holds no target day.

    ``day_type`` has one more entry than ``past`` (the target day's type is calendar knowledge).
    """
    n = past.shape[0]
    if model == "seasonal_naive":
        return past[n - 7].copy()
    lags = same_type_lags(day_type)
    train = np.arange(n - train_days, n)
    X = _design(_features(past, day_type, lags, train))              # (day·hour, f)
    x_new = _design(_features(past, day_type, lags, np.array([n])))   # reads past[:n] only
    fit = Ridge(alpha=RIDGE_ALPHA).fit(X, past[train].reshape(-1, past.shape[2]))
    out = fit.predict(x_new)
    return np.clip(out, 0.0, None)


def forecast_classes(history: History, target_day, model: str = "ridge", train_days: int = 56) -> np.ndarray:
    """Normalised class forecast (24 × class) for ``target_day`` from the days before it."""
    if model == "auto":
        raise input_error(PARAM_SOURCE, "forecast", "forecast_model", model,
                          "resolve 'auto' with choose_model() first")
    d = history.index_of(target_day, need_days=min_history_days(model, train_days),
                         what=f"model '{model}' (train_days={train_days})")
    past = history.days_before(d)
    return _forecast_series(past.load, history.day_type[: d + 1], model, train_days)


def _renewable_forecast(past: np.ndarray, window_days: int) -> np.ndarray:
    return past[-window_days:].mean(axis=0)


# --------------------------------------------------------------------------- 15 minutes
def steps_per_hour(resolution_min: int) -> int:
    """4 at ``resolution_min = 15``, 1 at 60 (the values :mod:`evsched.schema` allows)."""
    if resolution_min not in (60, 15):
        raise input_error(PARAM_SOURCE, "forecast", "resolution_min", resolution_min, "must be one of 60, 15")
    return 60 // int(resolution_min)


def shape_days(day_type: np.ndarray, d: int) -> np.ndarray:
    """Indices of the days whose mean 15-minute profile shapes day ``d``'s quarter-hours: the
    :data:`SHAPE_DAYS` latest days of ``d``'s day type among the :data:`SHAPE_LOOKBACK_DAYS`
    days before it (else the 7 days before it). Only days before ``d``."""
    past = np.arange(max(0, d - SHAPE_LOOKBACK_DAYS), d)
    same = past[day_type[past] == day_type[d]][-SHAPE_DAYS:]
    return same if len(same) else np.arange(max(0, d - 7), d)


def intra_hour(hourly_values: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Quarter-hour values (24·n × k) whose mean over each hour is ``hourly_values`` (24 × k),
    shaped by ``shape`` (24·n × k, e.g. a mean 15-minute profile): multiplicative where the
    shape's hourly mean is positive and the shape non-negative in that hour, additive
    (``+ shape − its hourly mean``) elsewhere (see the module docstring)."""
    h = np.asarray(hourly_values, dtype=float)
    k = h.shape[1]
    n = shape.shape[0] // 24
    s = np.asarray(shape, dtype=float).reshape(24, n, k)
    mean = s.mean(axis=1, keepdims=True)
    size = np.maximum(np.abs(s).max(axis=(0, 1), keepdims=True), 1e-300)
    mult = (mean > 1e-9 * size) & (s >= 0).all(axis=1, keepdims=True)
    ratio = np.where(mult, s / np.where(mult, mean, 1.0), 1.0)
    out = h[:, None, :] * ratio + np.where(mult, 0.0, s - mean)
    return out.reshape(24 * n, k)


def _class_forecast_at(history: History, target_day, model: str, train_days: int,
                       resolution_min: int) -> np.ndarray:
    """Class forecast (steps × class) at ``resolution_min``: the hourly forecast, with the
    intra-hour shape of :func:`shape_days` at 15 minutes."""
    fc = forecast_classes(history, target_day, model, train_days)
    n = steps_per_hour(resolution_min)
    if n == 1:
        return fc
    if history.load_15min is None:
        raise input_error(PARAM_SOURCE, "forecast", "resolution_min", resolution_min,
                          "this history has no 15-minute load profiles")
    d = history.index_of(target_day)
    return intra_hour(fc, history.load_15min[shape_days(history.day_type, d)].mean(axis=0))


def _renewable_forecast_at(history: History, d: int, window_days: int, resolution_min: int) -> np.ndarray:
    """Renewable forecast (steps × site) for day index ``d`` from the days before it."""
    n = steps_per_hour(resolution_min)
    if n == 1:
        return _renewable_forecast(history.days_before(d).renewables, window_days)
    if history.renewables_15min is None:  # no 15-minute renewables: the hour's value repeated
        return np.repeat(_renewable_forecast(history.days_before(d).renewables, window_days), n, axis=0)
    return _renewable_forecast(history.renewables_15min[:d], window_days)


# --------------------------------------------------------------------------- backtest
def backtest(target_day, *, days: int = 60, models=MODELS, train_days: int = 56,
             history: History | None = None) -> pd.DataFrame:
    """Rolling day-ahead backtest on the ``days`` days before ``target_day`` (feeder level).

    Each backtest day is forecast from the days before *it*. Returns the tidy frame
    ``date, hour, model, actual_kw, forecast_kw`` (feeder active power).
    """
    history = default_history() if history is None else history
    need = max(min_history_days(m, train_days) for m in models) + days
    d0 = history.index_of(target_day, need_days=need,
                          what=f"a {days}-day backtest of {list(models)} (train_days={train_days})")
    a = history.feeder.p_coef_kw.sum().to_numpy()  # kW per unit class profile, feeder total
    rows = []
    with threadpool_limits(1):  # many tiny fits: BLAS threads only add overhead
        fcs = {m: [_forecast_series(history.load[:d], history.day_type[: d + 1], m, train_days) @ a
                   for d in range(d0 - days, d0)] for m in models}
    for i, d in enumerate(range(d0 - days, d0)):
        actual = history.load[d] @ a
        for m in models:
            rows.append(pd.DataFrame({"date": history.dates[d], "hour": HOURS, "model": m,
                                      "actual_kw": actual, "forecast_kw": fcs[m][i]}))
    return pd.concat(rows, ignore_index=True)


def mape_pct(forecast_kw, actual_kw) -> float:
    """Mean absolute percentage error :math:`100\\,\\mathrm{mean}|\\hat P - P|/P` [%] of
    paired forecast and actual values (the ``mape_pct`` of :func:`backtest_metrics`)."""
    f, a = np.asarray(forecast_kw, dtype=float), np.asarray(actual_kw, dtype=float)
    return 100 * float((np.abs(f - a) / a).mean())


def daily_mape(detail: pd.DataFrame) -> pd.DataFrame:
    """MAPE of every backtest day and model (:func:`mape_pct` over the day's hours):
    ``date, model, mape_pct``. With every day complete, its mean over the days is the
    backtest's ``mape_pct``."""
    rows = [{"date": d, "model": m, "mape_pct": mape_pct(g.forecast_kw, g.actual_kw)}
            for (d, m), g in detail.groupby(["date", "model"], sort=True)]
    return pd.DataFrame(rows, columns=["date", "model", "mape_pct"])


def backtest_metrics(detail: pd.DataFrame) -> pd.DataFrame:
    """Per model: ``mape_pct, rmse_kw, peak_error_pct, peak_hour_error_h, n_days`` (see module)."""
    out = []
    for m, g in detail.groupby("model", sort=False):
        err = g.forecast_kw - g.actual_kw
        a = g.pivot(index="date", columns="hour", values="actual_kw").to_numpy()
        f = g.pivot(index="date", columns="hour", values="forecast_kw").to_numpy()
        out.append({"model": m,
                    "mape_pct": mape_pct(g.forecast_kw, g.actual_kw),
                    "rmse_kw": float(np.sqrt((err ** 2).mean())),
                    "peak_error_pct": 100 * float((np.abs(f.max(1) - a.max(1)) / a.max(1)).mean()),
                    "peak_hour_error_h": float(np.abs(f.argmax(1) - a.argmax(1)).mean()),
                    "n_days": a.shape[0]})
    return pd.DataFrame(out)


def choose_model(metrics: pd.DataFrame) -> str:
    """The model with the lowest backtest MAPE."""
    return str(metrics.loc[metrics.mape_pct.idxmin(), "model"])


def error_band(detail: pd.DataFrame, model: str, quantiles=(0.1, 0.9),
               resolution_min: int = 60) -> pd.DataFrame:
    """Per hour, quantiles of the backtest relative error r = actual/forecast − 1.

    Returns ``hour, lo_pu, hi_pu``: the band for a forecast F is [F(1+lo), F(1+hi)]. The
    backtest is hourly; at ``resolution_min = 15`` every quarter-hour (``hour`` = its start,
    0, 0.25, ...) carries the band of its clock hour, so the frame merges on ``hour`` with a
    15-minute forecast.
    """
    g = detail[detail.model == model]
    r = (g.actual_kw / g.forecast_kw - 1).groupby(g.hour)
    lo = r.quantile(quantiles[0]).reindex(HOURS).to_numpy()
    hi = r.quantile(quantiles[1]).reindex(HOURS).to_numpy()
    n = steps_per_hour(resolution_min)
    return pd.DataFrame({"hour": step_hours(1 / n), "lo_pu": np.repeat(lo, n), "hi_pu": np.repeat(hi, n)})


def renewable_backtest(target_day, *, days: int = 60, windows=(1, 7), history: History | None = None
                       ) -> pd.DataFrame:
    """Backtest the renewable forecast per site and window: ``site, window_days, rmse_pu, mae_pu``."""
    history = default_history() if history is None else history
    d0 = history.index_of(target_day, need_days=max(windows) + days,
                          what=f"a {days}-day renewable backtest")
    out = []
    for w in windows:
        fc = np.stack([_renewable_forecast(history.renewables[:d], w) for d in range(d0 - days, d0)])
        err = fc - history.renewables[d0 - days:d0]
        for s, site in enumerate(history.sites):
            out.append({"site": site, "window_days": w,
                        "rmse_pu": float(np.sqrt((err[..., s] ** 2).mean())),
                        "mae_pu": float(np.abs(err[..., s]).mean())})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- hand-off
def forecast_bus_load(target_day, model: str = "ridge", train_days: int = 56,
                      history: History | None = None, resolution_min: int = 60) -> pd.DataFrame:
    """Tomorrow's bus load: tidy ``hour, bus, p_kw, q_kvar`` (buses 1..33, load convention),
    hourly or at 15 minutes (``hour`` = the step's start: 0, 0.25, ...; the mean of the four
    quarter-hours of an hour is the hourly forecast)."""
    history = default_history() if history is None else history
    x = pd.DataFrame(_class_forecast_at(history, target_day, model, train_days, resolution_min),
                     columns=history.classes, index=step_hours(resolution_min / 60))
    p, q = history.feeder.bus_load(x)
    out = p.stack().rename("p_kw").to_frame()
    out["q_kvar"] = q.stack().to_numpy()
    out.index.names = ["hour", "bus"]
    return out.reset_index()


def forecast_renewables(target_day, window_days: int = 7, history: History | None = None,
                        resolution_min: int = 60) -> pd.DataFrame:
    """Tomorrow's availability per site and step: tidy ``hour, site, availability_pu`` in [0, 1]
    (hourly, or at 15 minutes: the mean of the same quarter-hour over the window)."""
    history = default_history() if history is None else history
    d = history.index_of(target_day, need_days=window_days,
                         what=f"the renewable forecast (window_days={window_days})")
    fc = _renewable_forecast_at(history, d, window_days, resolution_min)
    df = pd.DataFrame(fc, columns=history.sites, index=step_hours(resolution_min / 60))
    df.index.name = "hour"
    return df.stack().rename("availability_pu").rename_axis(["hour", "site"]).reset_index()


def actual_day(target_day, history: History | None = None, resolution_min: int = 60) -> dict:
    """The realised values of a day (for evaluation plots only, never for forecasting):
    ``{'feeder': hour, p_kw, q_kvar; 'renewables': hour, site, availability_pu}``, hourly or
    at 15 minutes."""
    history = default_history() if history is None else history
    d = history.index_of(target_day)
    hours = step_hours(resolution_min / 60)
    quarter = steps_per_hour(resolution_min) > 1
    load = history.load_15min if quarter else history.load
    ren_d = history.renewables_15min if quarter else history.renewables
    if load is None or ren_d is None:
        raise input_error(PARAM_SOURCE, "forecast", "resolution_min", resolution_min,
                          "this history has no 15-minute profiles")
    x = pd.DataFrame(load[d], columns=history.classes, index=hours)
    feeder = history.feeder.feeder_load(x).rename_axis("hour").reset_index()
    ren = pd.DataFrame(ren_d[d], columns=history.sites, index=hours).rename_axis("hour")
    ren = ren.stack().rename("availability_pu").rename_axis(["hour", "site"]).reset_index()
    return {"feeder": feeder, "renewables": ren}


@dataclass
class DayAhead:
    """Everything the scenarios need from the forecasting step (tidy frames)."""

    target_day: pd.Timestamp
    model: str
    load: pd.DataFrame         # hour, bus, p_kw, q_kvar
    feeder: pd.DataFrame       # hour, p_kw, q_kvar
    renewables: pd.DataFrame   # hour, site, availability_pu


def day_ahead(target_day, model: str = _D["forecast_model"], train_days: int = _D["train_days"],
              renewable_window_days: int = _D["renewable_window_days"],
              backtest_days: int = _D["backtest_days"], history: History | None = None,
              resolution_min: int = _D["resolution_min"]) -> DayAhead:
    """One call for the scenarios: bus load, feeder totals and renewable availability, on the
    day's grid of ``resolution_min`` (60: 24 hours; 15: 96 quarter-hours averaging exactly to
    the hourly forecast).

    ``model='auto'`` runs the backtest first (hourly) and uses the model with the lowest MAPE.

    Within a batch run (``make run``: :mod:`evsched.run_study` sets :data:`RUN_CACHE_ENV` to a
    folder outside ``results/`` that lives as long as the run) the forecast is computed once and
    read back by every later notebook: the file is named by a digest of the arguments and of the
    history's data, so other parameters or another feeder never get it.
    """
    history = default_history() if history is None else history
    args = (str(pd.Timestamp(target_day).date()), model, int(train_days), int(renewable_window_days),
            int(backtest_days), int(resolution_min))
    cached = _run_cache_path(args, history)
    if cached is not None and cached.exists():
        with open(cached, "rb") as fh:
            return pickle.load(fh)
    if model == "auto":
        model = choose_model(backtest_metrics(backtest(target_day, days=backtest_days,
                                                       train_days=train_days, history=history)))
    load = forecast_bus_load(target_day, model, train_days, history, resolution_min)
    feeder = load.groupby("hour", as_index=False)[["p_kw", "q_kvar"]].sum()
    ren = forecast_renewables(target_day, renewable_window_days, history, resolution_min)
    out = DayAhead(pd.Timestamp(target_day), model, load, feeder, ren)
    if cached is not None:
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(out, fh)
        os.replace(tmp, cached)  # atomic: a reader never sees half a file
    return out


def _run_cache_path(args: tuple, history: History):
    """The cache file of a :func:`day_ahead` call in this run's cache folder, or None."""
    folder = os.environ.get(RUN_CACHE_ENV)
    if not folder or not os.path.isdir(folder):
        return None
    h = hashlib.sha256(repr(args).encode())
    for a in (history.load, history.renewables, history.load_15min, history.renewables_15min,
              history.dates.asi8, history.day_type):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr((history.classes, history.sites)).encode())
    h.update(pickle.dumps(history.feeder))
    return Path(folder) / f"day_ahead-{h.hexdigest()[:24]}.pkl"


# --------------------------------------------------------------------------- parameters
def check_params(target_day, forecast_model: str = _D["forecast_model"],
                 backtest_days: int = _D["backtest_days"], train_days: int = _D["train_days"],
                 renewable_window_days: int = _D["renewable_window_days"],
                 history: History | None = None, resolution_min: int = _D["resolution_min"]) -> dict:
    """Validate the forecasting parameters of notebooks 01/02; return them normalised.

    Defaults and ranges are those of :class:`evsched.schema.Forecast` (``evsched params``);
    besides, ``target_day`` must lie inside the history with enough history before it for the
    backtest and the model (``train_days + 14 + backtest_days`` days).
    """
    from evsched.schema import validate_topic

    p = validate_topic("forecast", {"target_day": target_day, "forecast_model": forecast_model,
                                    "backtest_days": backtest_days, "train_days": train_days,
                                    "renewable_window_days": renewable_window_days,
                                    "resolution_min": resolution_min}, source=PARAM_SOURCE)
    history = default_history() if history is None else history
    need = max(min_history_days(m, p.train_days) for m in MODELS) + p.backtest_days
    history.index_of(p.target_day, need_days=need,
                     what=f"the {p.backtest_days}-day backtest with train_days={p.train_days}")
    return {"target_day": pd.Timestamp(p.target_day).normalize(), "forecast_model": p.forecast_model,
            "backtest_days": p.backtest_days, "train_days": p.train_days,
            "renewable_window_days": p.renewable_window_days, "resolution_min": p.resolution_min}
