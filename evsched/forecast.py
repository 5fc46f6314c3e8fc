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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from evsched.errors import input_error
from evsched.history import Feeder, build_feeder, renewable_history
from evsched.schema import defaults as _schema_defaults

MODELS = ("seasonal_naive", "ridge")
LAG_DAYS = 14          # days of history the features of one training day may look back
RIDGE_ALPHA = 1.0
HOURS = np.arange(24)
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
    """

    dates: pd.DatetimeIndex
    load: np.ndarray
    renewables: np.ndarray
    classes: list
    sites: list
    day_type: np.ndarray
    feeder: Feeder

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
        return History(self.dates[:d], self.load[:d], self.renewables[:d], self.classes, self.sites,
                       self.day_type[:d], self.feeder)


def build_history(feeder: Feeder | None = None, renewables: pd.DataFrame | None = None) -> History:
    """Arrange the feeder's hourly class profiles and hourly renewables as day × hour arrays."""
    feeder = build_feeder() if feeder is None else feeder
    renewables = renewable_history() if renewables is None else renewables
    xh = feeder.class_hourly
    n = len(xh) // 24
    if n * 24 != len(xh) or xh.index[0].hour != 0:
        raise input_error("<history>", f"timestamp {xh.index[0]}", "time", len(xh),
                          "the hourly history must consist of whole days starting at 00:00")
    dates = pd.DatetimeIndex(xh.index[::24]).normalize()
    ren = renewables.reindex(xh.index)
    return History(dates=dates, load=xh.to_numpy().reshape(n, 24, -1),
                   renewables=ren.to_numpy().reshape(n, 24, -1), classes=list(xh.columns),
                   sites=list(renewables.columns), day_type=day_types(dates), feeder=feeder)


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


def error_band(detail: pd.DataFrame, model: str, quantiles=(0.1, 0.9)) -> pd.DataFrame:
    """Per hour, quantiles of the backtest relative error r = actual/forecast − 1.

    Returns ``hour, lo_pu, hi_pu``: the band for a forecast F is [F(1+lo), F(1+hi)].
    """
    g = detail[detail.model == model]
    r = (g.actual_kw / g.forecast_kw - 1).groupby(g.hour)
    return pd.DataFrame({"hour": HOURS, "lo_pu": r.quantile(quantiles[0]).to_numpy(),
                         "hi_pu": r.quantile(quantiles[1]).to_numpy()})


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
                      history: History | None = None) -> pd.DataFrame:
    """Tomorrow's hourly bus load: tidy ``hour, bus, p_kw, q_kvar`` (buses 1..33, load convention)."""
    history = default_history() if history is None else history
    x = pd.DataFrame(forecast_classes(history, target_day, model, train_days), columns=history.classes)
    p, q = history.feeder.bus_load(x)
    out = p.stack().rename("p_kw").to_frame()
    out["q_kvar"] = q.stack().to_numpy()
    out.index.names = ["hour", "bus"]
    return out.reset_index()


def forecast_renewables(target_day, window_days: int = 7, history: History | None = None) -> pd.DataFrame:
    """Tomorrow's hourly availability per site: tidy ``hour, site, availability_pu`` in [0, 1]."""
    history = default_history() if history is None else history
    d = history.index_of(target_day, need_days=window_days,
                         what=f"the renewable forecast (window_days={window_days})")
    fc = _renewable_forecast(history.days_before(d).renewables, window_days)
    df = pd.DataFrame(fc, columns=history.sites)
    df.index.name = "hour"
    return df.stack().rename("availability_pu").rename_axis(["hour", "site"]).reset_index()


def actual_day(target_day, history: History | None = None) -> dict:
    """The realised values of a day (for evaluation plots only, never for forecasting):
    ``{'feeder': hour, p_kw, q_kvar; 'renewables': hour, site, availability_pu}``."""
    history = default_history() if history is None else history
    d = history.index_of(target_day)
    x = pd.DataFrame(history.load[d], columns=history.classes)
    feeder = history.feeder.feeder_load(x).rename_axis("hour").reset_index()
    ren = pd.DataFrame(history.renewables[d], columns=history.sites).rename_axis("hour")
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
              backtest_days: int = _D["backtest_days"], history: History | None = None) -> DayAhead:
    """One call for the scenarios: bus load, feeder totals and renewable availability.

    ``model='auto'`` runs the backtest first and uses the model with the lowest MAPE.
    """
    history = default_history() if history is None else history
    if model == "auto":
        model = choose_model(backtest_metrics(backtest(target_day, days=backtest_days,
                                                       train_days=train_days, history=history)))
    load = forecast_bus_load(target_day, model, train_days, history)
    feeder = load.groupby("hour", as_index=False)[["p_kw", "q_kvar"]].sum()
    ren = forecast_renewables(target_day, renewable_window_days, history)
    return DayAhead(pd.Timestamp(target_day), model, load, feeder, ren)


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
