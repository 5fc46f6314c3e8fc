r"""The deviation model: what tomorrow does differently from the forecast and the reservations.

A **sample** is one realisation of the study day. Every random quantity is a deterministic
function of independent uniforms drawn from ``numpy.random.default_rng([seed, sample])``, so

* sample ``i`` is the same whatever the number of samples (and on any worker);
* the samples are *common random numbers* across knob values: raising ``no_show_prob`` from
  10 % to 20 % removes further EVs from the same samples (an EV is a no-show when its uniform
  ``u < no_show_prob``), which makes the no-show sweep of notebook 06 a paired comparison.

Knobs (:class:`DeviationModel`; each validated, the error names the parameter, value and range)
---------------------------------------------------------------------------------------------

=======================  =====  ===============================  =======================================
knob                     unit   range                            distribution
=======================  =====  ===============================  =======================================
``no_show_prob``         --     0..0.9                           reservation i does not come at all:
                                                                 Bernoulli(p), independent per EV
``arrival_delay_pmf``    --     1..7 probabilities, sum 1        :math:`P(\delta^a_i = k\text{ h})`,
                                                                 k = 0, 1, …: late arrival only
``departure_shift_pmf``  --     odd count 1..9, sum 1            :math:`P(\delta^d_i = k\text{ h})`,
                                                                 k = −m..m: negative = leaves early
``energy_request_sd``    --     0..0.5                           the energy request becomes
                                                                 :math:`(1+\varepsilon_i)` × reserved need,
                                                                 :math:`\varepsilon_i = \sigma Z`,
                                                                 Z standard normal truncated to ±2
``forecast_error``       --     'backtest', 'actual', 'none'     load/PV/wind of the day, below
``forecast_error_scale`` --     0..3                             multiplies the forecast error
``seed``                 --     integer 0..2³²−1                 the sample generator's seed
=======================  =====  ===============================  =======================================

Defaults (:class:`DeviationModel`) are assumptions, not measurements (the fleet itself is synthetic,
:mod:`evsched.fleet`): 10 % no-shows, arrival delay 0/1/2/3 h with probabilities
0.6/0.25/0.1/0.05 (mean 0.6 h), departure shift −2..+2 h with 0.05/0.1/0.7/0.1/0.05, energy
request ±15 % (sd). Hours are whole hours, like the fleet's.

The realised stay (rules keep every realised reservation valid)
----------------------------------------------------------------
With reserved arrival ``a``, departure ``e = departure_hour + 24·departure_day`` (stay
``[a, e)``), a showing EV stays ``[a', e')`` with

.. math::
    a' = \max\big(a,\; \min(a + \delta^a,\; 23,\; e - 1)\big), \qquad
    e' = \min\big(\max(e + \delta^d,\; a' + \min(1, e - a)),\; e_{cap}\big)

``e_cap = 24`` for a same-day stay (the day ends at midnight: a same-day stay is not turned
into an overnight one) and ``a' + 23`` for an overnight stay (a stay is shorter than 24 h).
So an owner never arrives after 23:00 or less than 1 h before the reserved departure, and
never stays less than 1 h. An overnight stay that now ends by midnight becomes a same-day
stay (its morning session is empty).

Energy: with arrival energy :math:`E_a`, reserved departure energy :math:`E_{dep}`, need
:math:`n = E_{dep} - E_a`, SOC box :math:`[E_{floor}, E_{ceil}]`
(:mod:`evsched.sessions`), the owner requests :math:`E_{req} = \mathrm{clip}(E_a + (1 +
\varepsilon) n, E_{floor}, E_{ceil})`. What can be delivered in the realised stay at full
power is :math:`E_{reach} = E_a + \eta P (e' - a')` (:math:`E_a` for a discharge-only EV), so
the **obligation** is

.. math:: E_{obl} = \min(E_{req}, E_{reach})

and :math:`\max(E_{req} - E_{reach}, 0)` is *unreachable*: no policy can deliver it (reported
per sample, the same for every policy). The realised reservation frame carries
``soc_departure_min = E_obl / B``; :func:`evsched.disaggregation.verify` on it decides which
reservation is **broken** (:mod:`evsched.uncertainty.execution`). The owner declares
``e'`` and :math:`E_{req}` when plugging in (the charging app): a re-dispatching policy knows
them from the arrival on, a day-ahead one never.

Forecast error of load, PV and wind, from the real data (:class:`ForecastErrors`)
--------------------------------------------------------------------------------
The case's forecast (:func:`evsched.forecast.day_ahead`) predicts the 7 normalised SimBench
class profiles :math:`\hat x` (24 × 7) and the PV/WT availability :math:`\hat a` (24 × 2). The
realised day is

* ``'actual'``: the target day's SimBench values, :math:`x = \hat x + s\,(x^{act} - \hat x)`,
  :math:`a = \mathrm{clip}(\hat a + s\,(a^{act} - \hat a), 0, 1)` (``s = forecast_error_scale``,
  ``s = 1``: exactly the actual day);
* ``'backtest'``: a **block bootstrap of whole days** of the rolling day-ahead backtest
  (the ``backtest_days`` days before the target day, each forecast from the days before it,
  as in :func:`evsched.forecast.backtest`, with the case's model and window): sample ``i``
  draws one backtest day ``d`` uniformly and adds that day's residuals
  :math:`x = \max(\hat x + s\,e_d, 0)`, :math:`a = \mathrm{clip}(\hat a + s\,r_d, 0, 1)`,
  :math:`e_d = x_d - \hat x_d`, :math:`r_d = a_d - \hat a_d`. A whole day keeps the
  correlation between hours, classes, load and weather;
* ``'none'``: the forecast itself.

Bus loads follow with the feeder's class coefficients (:class:`evsched.history.Feeder`):
:math:`p = A x`, :math:`q = A\tan\varphi\, x`, exactly as the forecast was mapped, so with
``'none'`` the sample equals the case's forecast to round-off (checked when built).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from evsched.errors import InputError
from evsched.params import check_range, plain
from evsched.sessions import Sessions, _energies, build_sessions, stay_hours

FORECAST_ERROR_MODES = ("backtest", "actual", "none")
TRUNCATION_SD = 2.0
"""The energy-request deviation :math:`\\varepsilon = \\sigma Z` uses Z truncated to ±2."""
MIN_STAY_H = 1.0
"""Shortest realised stay [h] (or the reserved stay if shorter)."""
LATEST_ARRIVAL_H = 23.0
"""Latest realised arrival [h] (the study day ends at midnight)."""

PARAMETERS = {
    "no_show_prob": ("-", "0..0.9", "probability that a reservation's EV does not come (independent per EV)"),
    "arrival_delay_pmf": ("-", "1..7 probabilities in [0, 1] summing to 1",
                          "P(arrival delay = 0, 1, 2, ... h); late arrival only"),
    "departure_shift_pmf": ("-", "an odd number 1..9 of probabilities in [0, 1] summing to 1",
                            "P(departure shift = -m, ..., 0, ..., +m h); negative: leaves early"),
    "energy_request_sd": ("-", "0..0.5", "relative sd of the energy request (truncated normal, ±2 sd)"),
    "forecast_error": ("-", "'backtest', 'actual' or 'none'",
                       "load/PV/WT of the day: backtest residual days, the target day's actuals, or the forecast"),
    "forecast_error_scale": ("-", "0..3", "multiplies the forecast error"),
    "seed": ("-", "integer 0..4294967295", "seed of the sample generator"),
}
"""Every knob of :class:`DeviationModel`: unit, allowed range, meaning (one home for docs/notebook)."""


def _pmf(name: str, value, source: str, odd: bool, max_len: int) -> tuple[float, ...]:
    shown = plain(value)
    rng = PARAMETERS[name][1]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise InputError(f"{source} '{name}' = {shown!r}: must be a list of {rng}")
    if not (1 <= len(value) <= max_len) or (odd and len(value) % 2 == 0):
        raise InputError(f"{source} '{name}' = {shown!r}: must be {rng} (got {len(value)} values)")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v) or not 0.0 <= float(v) <= 1.0:
            raise InputError(f"{source} '{name}' = {shown!r}: every entry must be a probability in "
                             f"[0, 1] ({rng})")
        out.append(float(v))
    if abs(sum(out) - 1.0) > 1e-6:
        raise InputError(f"{source} '{name}' = {shown!r}: the probabilities sum to {sum(out):.6g}, "
                         f"must sum to 1 ({rng})")
    return tuple(out)


@dataclass(frozen=True)
class DeviationModel:
    """The knobs of the deviation model (see the module docstring and :data:`PARAMETERS`).

    Construction validates every knob; an :class:`~evsched.errors.InputError` names the
    parameter, its value and the allowed range (``source`` prefixes the message, e.g.
    "notebook parameter").
    """

    no_show_prob: float = 0.1
    arrival_delay_pmf: tuple = (0.6, 0.25, 0.1, 0.05)
    departure_shift_pmf: tuple = (0.05, 0.1, 0.7, 0.1, 0.05)
    energy_request_sd: float = 0.15
    forecast_error: str = "backtest"
    forecast_error_scale: float = 1.0
    seed: int = 20240601
    source: str = field(default="notebook parameter", compare=False, repr=False)

    def __post_init__(self):
        s = self.source
        set_ = object.__setattr__
        set_(self, "no_show_prob", check_range("no_show_prob", self.no_show_prob, 0.0, 0.9, source=s))
        set_(self, "arrival_delay_pmf", _pmf("arrival_delay_pmf", self.arrival_delay_pmf, s, False, 7))
        set_(self, "departure_shift_pmf", _pmf("departure_shift_pmf", self.departure_shift_pmf, s, True, 9))
        set_(self, "energy_request_sd", check_range("energy_request_sd", self.energy_request_sd, 0.0, 0.5, source=s))
        if self.forecast_error not in FORECAST_ERROR_MODES:
            raise InputError(f"{s} 'forecast_error' = {plain(self.forecast_error)!r}: must be one of "
                             f"{list(FORECAST_ERROR_MODES)}")
        set_(self, "forecast_error_scale",
             check_range("forecast_error_scale", self.forecast_error_scale, 0.0, 3.0, source=s))
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
            raise InputError(f"{s} 'seed' = {plain(seed)!r}: must be an integer in 0..4294967295")
        set_(self, "seed", int(seed))

    # --- the distributions ------------------------------------------------------------------
    @property
    def arrival_delays_h(self) -> np.ndarray:
        """Support of the arrival delay [h]: 0, 1, ..."""
        return np.arange(len(self.arrival_delay_pmf), dtype=float)

    @property
    def departure_shifts_h(self) -> np.ndarray:
        """Support of the departure shift [h]: −m..m."""
        m = len(self.departure_shift_pmf) // 2
        return np.arange(-m, m + 1, dtype=float)

    @property
    def max_late_departure_h(self) -> float:
        """Largest positive departure shift with non-zero probability [h] (0 if none)."""
        s = self.departure_shifts_h[np.asarray(self.departure_shift_pmf) > 0]
        return float(max(s.max(), 0.0))

    def delay_survival(self, k) -> np.ndarray:
        """:math:`P(\\delta^a > k)` for whole hours ``k`` (array-like)."""
        cdf = np.cumsum(self.arrival_delay_pmf)
        k = np.asarray(k, dtype=int)
        return np.where(k < 0, 1.0, np.where(k >= len(cdf), 0.0, 1.0 - cdf[np.clip(k, 0, len(cdf) - 1)]))

    def show_posterior(self, hours_late) -> np.ndarray:
        """Probability that an EV still comes given it has not arrived ``hours_late`` (≥ 0) hours
        after its reserved arrival (Bayes: :math:`(1-p)S(k) / (p + (1-p)S(k))`,
        :math:`S(k) = P(\\delta^a \\ge k+1)`); ``hours_late < 0``: the prior ``1 − p``."""
        p = self.no_show_prob
        k = np.asarray(hours_late, dtype=float)
        surv = self.delay_survival(np.floor(k).astype(int))
        post = (1 - p) * surv / np.maximum(p + (1 - p) * surv, 1e-300)
        return np.where(k < 0, 1 - p, post)

    def quantile_arrival_delay(self, level: float) -> float:
        """Smallest delay d with :math:`P(\\delta^a \\le d) \\ge` ``level`` [h]."""
        cdf = np.cumsum(self.arrival_delay_pmf)
        return float(self.arrival_delays_h[min(np.searchsorted(cdf, level - 1e-12), len(cdf) - 1)])

    def quantile_early_departure(self, level: float) -> float:
        """Smallest e ≥ 0 with :math:`P(\\delta^d \\ge -e) \\ge` ``level`` [h]."""
        shifts, pmf = self.departure_shifts_h, np.asarray(self.departure_shift_pmf)
        for e in range(len(pmf)):
            if pmf[shifts >= -e].sum() >= level - 1e-12:
                return float(e)
        return float(-shifts.min())

    def with_(self, **changes) -> DeviationModel:
        """A copy with some knobs changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def table(self) -> pd.DataFrame:
        """One row per knob: ``parameter, value, unit, range, meaning``."""
        return pd.DataFrame([{"parameter": k, "value": str(plain(getattr(self, k))), "unit": u,
                              "range": r, "meaning": m} for k, (u, r, m) in PARAMETERS.items()])


# --- forecast error from the real data ---------------------------------------------------------

@dataclass
class ForecastErrors:
    """The case's forecast, the target day's actual values and the backtest residuals.

    Attributes
    ----------
    target_day, model : the forecast day and the load model that produced the case's forecast
    dates : (D,) the backtest days
    class_forecast, class_actual : (24, C) normalised class profiles of the target day
    class_residual : (D, 24, C) actual − forecast of each backtest day
    ren_forecast, ren_actual : (24, 2) PV and WT availability [p.u.] of the target day
    ren_residual : (D, 24, 2) actual − forecast availability of each backtest day
    p_coef, q_coef : (n_bus, C) bus kW / kvar per unit of class profile (network bus order)
    pv_capacity_kw, wt_capacity_kw : (sites,) installed capacities of the case
    """

    target_day: pd.Timestamp
    model: str
    dates: pd.DatetimeIndex
    class_forecast: np.ndarray
    class_actual: np.ndarray
    class_residual: np.ndarray
    ren_forecast: np.ndarray
    ren_actual: np.ndarray
    ren_residual: np.ndarray
    p_coef: np.ndarray
    q_coef: np.ndarray
    pv_capacity_kw: np.ndarray
    wt_capacity_kw: np.ndarray

    @property
    def n_days(self) -> int:
        return len(self.dates)

    def loads(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bus loads ``(p_kw, q_kvar)`` (n_bus × 24) of class values ``x`` (24 × C)."""
        return self.p_coef @ x.T, self.q_coef @ x.T

    def availability(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PV and WT availability [kW] (sites × 24) of per-unit availability ``a`` (24 × 2)."""
        return self.pv_capacity_kw[:, None] * a[None, :, 0], self.wt_capacity_kw[:, None] * a[None, :, 1]

    def day(self, mode: str, scale: float = 1.0, index: int | None = None):
        """``(load_p_kw, load_q_kvar, pv_avail_kw, wt_avail_kw, label)`` of a realised day:
        ``mode`` 'none' (the forecast), 'actual' (the target day) or 'backtest' (residuals of
        backtest day ``index`` added to the forecast); ``scale`` multiplies the error."""
        if mode == "none":
            x, a, label = self.class_forecast, self.ren_forecast, "forecast"
        elif mode == "actual":
            x = self.class_forecast + scale * (self.class_actual - self.class_forecast)
            a = self.ren_forecast + scale * (self.ren_actual - self.ren_forecast)
            label = f"actual {self.target_day:%Y-%m-%d}"
        elif mode == "backtest":
            x = self.class_forecast + scale * self.class_residual[index]
            a = self.ren_forecast + scale * self.ren_residual[index]
            label = f"residual of {self.dates[index]:%Y-%m-%d}"
        else:
            raise InputError(f"forecast_error = {mode!r}: must be one of {list(FORECAST_ERROR_MODES)}")
        p, q = self.loads(np.maximum(x, 0.0))
        pv, wt = self.availability(np.clip(a, 0.0, 1.0))
        return p, q, pv, wt, label

    def residual_table(self) -> pd.DataFrame:
        """Per backtest day: feeder energy error [%], peak error [%], mean PV and WT
        availability error [p.u.] (for the notebook)."""
        a = self.p_coef.sum(axis=0)
        fc = (self.class_actual_days - self.class_residual) @ a
        act = self.class_actual_days @ a
        return pd.DataFrame({
            "date": self.dates,
            "feeder_energy_error_pct": 100 * (act.sum(1) - fc.sum(1)) / fc.sum(1),
            "feeder_peak_error_pct": 100 * (act.max(1) - fc.max(1)) / fc.max(1),
            "pv_error_pu_mean": self.ren_residual[..., 0].mean(1),
            "wt_error_pu_mean": self.ren_residual[..., 1].mean(1)})

    class_actual_days: np.ndarray = None  # (D, 24, C) actual class values of the backtest days


def check_hourly(cd) -> None:
    """The uncertainty study works on the study's hourly day (24 steps of 1 h)."""
    dt = float(getattr(cd, "dt_h", 1.0))
    if dt != 1.0 or cd.T != 24:
        raise InputError(f"evsched.uncertainty works on the hourly day (24 steps of 1 h, resolution_min = 60); "
                         f"the case has {cd.T} steps of {dt} h")


def forecast_errors(cd, history=None) -> ForecastErrors:
    """The :class:`ForecastErrors` of a case (:class:`evsched.case.CaseData`).

    Re-runs the case's forecast (model, training window, renewable window from
    ``cd.case.forecast``) on the target day and on each of the ``backtest_days`` days before
    it (each from the days before *it*, as :func:`evsched.forecast.backtest`), and checks that
    the class forecast mapped to the buses reproduces the case's load and availability.
    """
    from evsched import forecast

    check_hourly(cd)
    history = forecast.default_history() if history is None else history
    fc = dict(cd.case.forecast)
    target = fc.get("target_day")
    if target is None:
        raise InputError("forecast_errors: the case has no 'target_day'")
    model = fc.get("forecast_model", "ridge")
    train = int(fc.get("train_days", 56))
    window = int(fc.get("renewable_window_days", 7))
    days = int(fc.get("backtest_days", 60))
    if model == "auto":
        model = forecast.choose_model(forecast.backtest_metrics(
            forecast.backtest(target, days=days, train_days=train, history=history)))
    d0 = history.index_of(target)
    feeder = history.feeder
    net = cd.network
    p_coef = feeder.p_coef_kw.reindex(net.bus_ids).fillna(0.0)[history.classes].to_numpy(float)
    q_coef = feeder.q_coef_kvar.reindex(net.bus_ids).fillna(0.0)[history.classes].to_numpy(float)

    def ren_forecast(d):
        return history.renewables[d - window:d].mean(axis=0)

    sites = list(history.sites)
    if sites[:2] != ["pv", "wt"]:
        raise InputError(f"forecast_errors: expected renewable sites ['pv', 'wt'], history has {sites}")
    cls_fc = forecast.forecast_classes(history, target, model, train)
    bt = np.arange(d0 - days, d0)
    resid, actual_days, ren_res = [], [], []
    for d in bt:
        resid.append(history.load[d] - forecast.forecast_classes(history, history.dates[d], model, train))
        actual_days.append(history.load[d])
        ren_res.append(history.renewables[d][:, :2] - ren_forecast(d)[:, :2])
    c = cd.case
    out = ForecastErrors(
        target_day=pd.Timestamp(target), model=model, dates=history.dates[bt],
        class_forecast=cls_fc, class_actual=history.load[d0], class_residual=np.array(resid),
        ren_forecast=ren_forecast(d0)[:, :2], ren_actual=history.renewables[d0][:, :2],
        ren_residual=np.array(ren_res), p_coef=p_coef, q_coef=q_coef,
        pv_capacity_kw=np.asarray(c.pv_capacity_kw, float), wt_capacity_kw=np.asarray(c.wt_capacity_kw, float),
        class_actual_days=np.array(actual_days))
    p, q, pv, wt, _ = out.day("none")
    for name, mine, case in (("load_p_kw", p, cd.load_p_kw), ("load_q_kvar", q, cd.load_q_kvar),
                             ("pv_avail_kw", pv, cd.pv_avail_kw), ("wt_avail_kw", wt, cd.wt_avail_kw)):
        if mine.shape != case.shape or not np.allclose(mine, case, rtol=1e-9, atol=1e-6):
            raise InputError(f"forecast_errors: the case's {name} is not the forecast of "
                             f"evsched.forecast for {target} ({model}); the deviation model needs "
                             "a case built by evsched.case.build_case")
    return out


# --- samples ------------------------------------------------------------------------------------

@dataclass
class Sample:
    """One realisation of the day.

    Attributes
    ----------
    index : sample number
    show : (N,) bool, the EV comes
    arrival_delay_h, departure_shift_h : (N,) drawn deviations [h] (before the stay rules)
    energy_factor : (N,) 1 + ε
    day_label : which day's load/renewables ('forecast', 'actual …', 'residual of …')
    load_p_kw, load_q_kvar : (n_bus, 24) realised base load
    pv_avail_kw, wt_avail_kw : (sites, 24) realised availability
    actual : realised reservations (all N rows, the schema of :mod:`evsched.reservations`;
        no-shows keep their reserved values), ``soc_departure_min`` = obligation / B
    request_kwh, obligation_kwh, unreachable_kwh : (N,) battery energies (0 for no-shows)
    """

    index: int
    show: np.ndarray
    arrival_delay_h: np.ndarray
    departure_shift_h: np.ndarray
    energy_factor: np.ndarray
    day_label: str
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    pv_avail_kw: np.ndarray
    wt_avail_kw: np.ndarray
    actual: pd.DataFrame
    request_kwh: np.ndarray
    obligation_kwh: np.ndarray
    unreachable_kwh: np.ndarray

    @property
    def n_shown(self) -> int:
        return int(self.show.sum())

    @cached_property
    def shown(self) -> np.ndarray:
        """Indices of the reservations whose EV comes."""
        return np.flatnonzero(self.show)

    @cached_property
    def sessions(self) -> Sessions:
        """:func:`evsched.sessions.build_sessions` of the showing EVs' realised reservations
        (``res_index`` refers to the rows of ``actual.iloc[shown]``)."""
        return build_sessions(self.actual.iloc[self.shown].reset_index(drop=True))

    def aligned(self, reserved: Sessions) -> Sessions:
        """The realised sessions in the row order of the reserved ``sessions`` (same ``n``):
        a reserved row takes the bounds of the same reservation's realised first (day or
        evening) or morning session, or all-zero bounds when there is none (a no-show, or an
        overnight stay now ending by midnight)."""
        return align_sessions(reserved, self.sessions, self.shown, self.actual)


def align_sessions(reserved: Sessions, actual: Sessions, shown: np.ndarray, frame: pd.DataFrame) -> Sessions:
    """See :meth:`Sample.aligned`."""
    slot = lambda s: (s.kind == "morning").astype(int)
    key_res = reserved.res_index * 2 + slot(reserved)
    key_act = shown[actual.res_index] * 2 + slot(actual)
    order = np.argsort(key_res)
    pos = np.searchsorted(key_res[order], key_act)
    if np.any(pos >= len(order)) or np.any(key_res[order][np.minimum(pos, len(order) - 1)] != key_act):
        raise ValueError("a realised session has no reserved counterpart (a same-day stay became overnight)")
    rows = order[pos]  # reserved row of each realised session
    S, T = reserved.presence.shape
    z = np.zeros((S, T))

    def put(name, fill):
        out = fill.copy() if isinstance(fill, np.ndarray) else np.full(S, fill, dtype=float)
        out[rows] = getattr(actual, name)
        return out

    kind = reserved.kind.copy()
    kind[rows] = actual.kind
    return dataclasses.replace(
        reserved, kind=kind, presence=put("presence", z),
        p_charge_max_kw=put("p_charge_max_kw", z), p_discharge_max_kw=put("p_discharge_max_kw", z),
        s_max_kva=put("s_max_kva", z), energy_min_kwh=put("energy_min_kwh", z),
        energy_max_kwh=put("energy_max_kwh", z), soc_box_min_kwh=put("soc_box_min_kwh", reserved.soc_box_min_kwh),
        soc_box_max_kwh=put("soc_box_max_kwh", reserved.soc_box_max_kwh),
        target_min_kwh=put("target_min_kwh", 0.0), target_max_kwh=put("target_max_kwh", 0.0),
        e0_kwh=put("e0_kwh", reserved.e0_kwh), reservations=frame)


def realise(reservations: pd.DataFrame, show, arrival_delay_h, departure_shift_h, energy_factor):
    """The realised reservation frame and energies (rules of the module docstring).

    Returns ``(frame, request_kwh, obligation_kwh, unreachable_kwh)``; the frame keeps every
    row (no-shows unchanged), energies are 0 for no-shows.
    """
    r = reservations.reset_index(drop=True)
    a = r["arrival_hour"].to_numpy(float)
    e = a + stay_hours(r)
    overnight = e > 24.0 + 1e-9
    a2 = np.maximum(a, np.minimum.reduce([a + arrival_delay_h, np.full_like(a, LATEST_ARRIVAL_H), e - 1.0]))
    e_cap = np.where(overnight, a2 + 23.0, 24.0)
    e2 = np.minimum(np.maximum(e + departure_shift_h, a2 + np.minimum(MIN_STAY_H, e - a)), e_cap)
    B, e_a, e_dep, e_floor, e_ceil = _energies(r)
    need = e_dep - e_a
    req = np.clip(e_a + energy_factor * need, e_floor, e_ceil)
    mode = r["mode"].to_numpy(str)
    rate = np.where(mode != "discharge", r["efficiency"].to_numpy(float) * r["charger_kw"].to_numpy(float), 0.0)
    reach = np.minimum(e_a + rate * (e2 - a2), e_ceil)
    obl = np.minimum(req, reach)
    show = np.asarray(show, bool)
    out = r.copy()
    for col in ("arrival_hour", "departure_hour", "soc_departure_min"):
        out[col] = out[col].astype(float)
    out.loc[show, "arrival_hour"] = a2[show]
    day = (e2 >= 24.0 - 1e-9).astype(int)  # a stay ending at midnight: departure 0 h next day
    out.loc[show, "departure_hour"] = np.maximum(e2 - 24.0 * day, 0.0)[show]
    out.loc[show, "departure_day"] = day[show]
    out.loc[show, "soc_departure_min"] = (obl / B)[show]
    out["show"] = show
    zero = np.where(show, 1.0, 0.0)
    return out, req * zero, obl * zero, np.maximum(req - reach, 0.0) * zero


def draw_samples(model: DeviationModel, reservations: pd.DataFrame, errors: ForecastErrors,
                 indices) -> list[Sample]:
    """Samples ``indices`` (e.g. ``range(20)``) of ``model`` (reproducible, see module docstring)."""
    return [draw_sample(model, reservations, errors, int(i)) for i in indices]


def uniforms(seed: int, index: int, n: int) -> dict[str, np.ndarray | float]:
    """The independent uniforms of sample ``index``: ``show, arrival, departure, energy`` (n,)
    and ``day`` (a scalar); every random quantity of the sample is a function of these."""
    rng = np.random.default_rng([seed, index])
    u = rng.random((4, n))
    return {"show": u[0], "arrival": u[1], "departure": u[2], "energy": u[3], "day": float(rng.random())}


def draw_sample(model: DeviationModel, reservations: pd.DataFrame, errors: ForecastErrors, index: int,
                day_index: int | None = None) -> Sample:
    """Sample ``index`` of ``model`` (see :func:`draw_samples`); ``day_index`` forces the
    backtest residual day (stratified training sets of the robust policy)."""
    r = reservations.reset_index(drop=True)
    u = uniforms(model.seed, index, len(r))
    show = u["show"] >= model.no_show_prob
    cdf_a = np.cumsum(model.arrival_delay_pmf)
    delay = model.arrival_delays_h[np.minimum(np.searchsorted(cdf_a, u["arrival"], side="right"), len(cdf_a) - 1)]
    cdf_d = np.cumsum(model.departure_shift_pmf)
    shift = model.departure_shifts_h[np.minimum(np.searchsorted(cdf_d, u["departure"], side="right"), len(cdf_d) - 1)]
    lo, hi = ndtr(-TRUNCATION_SD), ndtr(TRUNCATION_SD)
    eps = model.energy_request_sd * ndtri(lo + u["energy"] * (hi - lo))
    factor = 1.0 + eps
    frame, req, obl, unreach = realise(r, show, delay, shift, factor)
    if day_index is None:
        day_index = min(int(u["day"] * errors.n_days), errors.n_days - 1)
    p, q, pv, wt, label = errors.day(model.forecast_error, model.forecast_error_scale, day_index)
    return Sample(index=index, show=show, arrival_delay_h=delay, departure_shift_h=shift,
                  energy_factor=factor, day_label=label, load_p_kw=p, load_q_kvar=q,
                  pv_avail_kw=pv, wt_avail_kw=wt, actual=frame, request_kwh=req,
                  obligation_kwh=obl, unreachable_kwh=unreach)


def nominal_sample(cd, errors: ForecastErrors, mode: str = "none", index: int = -1) -> Sample:
    """The day as reserved (every EV comes on time with its reserved need) on the forecast
    (``mode='none'``) or the target day's actual load and renewables (``'actual'``)."""
    r = cd.reservations.reset_index(drop=True)
    n = len(r)
    frame, req, obl, unreach = realise(r, np.ones(n, bool), np.zeros(n), np.zeros(n), np.ones(n))
    p, q, pv, wt, label = errors.day(mode)
    return Sample(index=index, show=np.ones(n, bool), arrival_delay_h=np.zeros(n),
                  departure_shift_h=np.zeros(n), energy_factor=np.ones(n), day_label=label,
                  load_p_kw=p, load_q_kvar=q, pv_avail_kw=pv, wt_avail_kw=wt, actual=frame,
                  request_kwh=req, obligation_kwh=obl, unreachable_kwh=unreach)
