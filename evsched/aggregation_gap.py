"""The price of aggregation: aggregated-station OPF vs the exact per-EV OPF, and disaggregation.

For one fleet on one network and base load, :func:`compare` solves

1. the **aggregated** model: one :class:`~evsched.model.StorageGroup` row per station with the
   envelopes of :mod:`evsched.aggregation`;
2. the **exact** model: one row per EV session (:func:`evsched.aggregation.exact_storage_group`);

both minimising the total active loss [kWh] of the multi-period SOC-relaxed DistFlow model
with the same data, and then splits the aggregated station schedule among the EVs
(:func:`evsched.disaggregation.disaggregate`).

* **aggregation gap** = ``loss_exact − loss_aggregated`` [kWh] (≥ 0 up to solver tolerance:
  the aggregate is a relaxation of the exact model, so its optimum can only be lower);
* **disaggregation failure rate** = share of reservations the split cannot honour.

Both models share the midnight handover of :mod:`evsched.sessions`, so the gap measures the
aggregation alone.

:data:`PLACEHOLDER_LOAD_MULTIPLIER` is a stand-in daily load shape (minimum 0.66 at 03:00-04:00,
peak 1.00 at 09:00, 0.97 in the evening: the IEEE-33 24-h multipliers of one comparable
published study) for studies that do not need the forecast of :mod:`evsched.case`.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from evsched.aggregation import aggregate, exact_storage_group
from evsched.disaggregation import (
    disaggregate,
    energy_not_delivered_kwh,
    session_schedule_from_result,
    station_net_from_result,
    verify,
)
from evsched.sessions import build_sessions

PLACEHOLDER_LOAD_MULTIPLIER = np.array([
    0.72, 0.68, 0.67, 0.66, 0.66, 0.68, 0.74, 0.84, 0.94, 1.00, 0.99, 0.97,
    0.95, 0.94, 0.93, 0.92, 0.93, 0.95, 0.97, 0.97, 0.97, 0.92, 0.84, 0.77])


def placeholder_base_load(network):
    """Nominal bus load × :data:`PLACEHOLDER_LOAD_MULTIPLIER`: ``(p_kw, q_kvar)`` (n_bus, 24)."""
    p, q = network.nominal_load()
    m = PLACEHOLDER_LOAD_MULTIPLIER[None, :]
    return p[:, None] * m, q[:, None] * m


def compare(network, reservations, load_p_kw, load_q_kvar, stations=None, reactive: bool = False,
            v_min_pu: float | None = None, v_max_pu: float | None = None,
            v_slack_pu: float | None = None, solver: str | None = None, exact: bool = True,
            extra_devices=(), time_sharing: bool = True, options=None, dt_h: float | None = None) -> dict:
    """Solve aggregated and exact models, disaggregate, verify; return metrics and objects.

    ``extra_devices`` (e.g. the PV/WT :class:`~evsched.model.DeviceGroup`s of a scenario) are
    added unchanged to both models; ``reactive`` gives the EV storage a reactive variable;
    ``time_sharing`` keeps the charger time-sharing limit ``p_ch + p_dis ≤ p_total_max``
    (:class:`evsched.model.StorageGroup`) in both models
    (``p_ch + p_dis ≤`` charger ratings: without it the optimiser may charge and discharge the
    same EV at once to burn surplus energy in the converters).

    ``options`` (:class:`evsched.schema.OPFOptions`, e.g. ``case.opf_options``) sets the
    voltage band, slack voltage and converter-loss objective of both models, as in the
    scenarios; without it, ``v_min_pu``/``v_max_pu``/``v_slack_pu`` (others: the defaults of
    :mod:`evsched.schema`).

    ``dt_h`` is the step length [h] (default: the day divided into the load's steps, 24 h / T:
    1 h for 24 steps, 0.25 h for 96); the sessions are built on that grid.

    Returns
    -------
    dict with ``loss_aggregated_kwh``, ``loss_exact_kwh``, ``gap_kwh``, ``gap_pct`` (of the
    exact loss), ``n_reservations``, ``n_not_honoured``, ``failure_rate``,
    ``shortfall_kwh`` (total departure energy missing), ``max_deviation_kw`` (station
    tracking), ``exact_not_honoured`` (verification of the exact per-EV schedule),
    ``exact_shortfall_kwh`` (departure energy missing in the exact schedule, beyond the
    verification tolerance), ``seconds_aggregated``, ``seconds_exact``; with the reservations put first
    (``priority="evs"``): ``evs_first_not_honoured`` and ``evs_first_deviation_kwh`` (Σ|station
    deviation from its optimised schedule| [kWh]); and the objects ``sessions``, ``envelopes``,
    ``result_aggregated``, ``result_exact``, ``disaggregation``.
    """
    from evsched.errors import InputError
    from evsched.model import OPFModel
    from evsched.schema import OPFOptions

    dt_h = 24.0 / np.shape(load_p_kw)[1] if dt_h is None else float(dt_h)
    sessions = build_sessions(reservations, dt_h=dt_h)
    env = aggregate(sessions, stations=stations)
    def without_time_sharing(group):
        return group if time_sharing else dataclasses.replace(group, p_total_max_kw=None)

    band = {k: v for k, v in dict(v_min_pu=v_min_pu, v_max_pu=v_max_pu, v_slack_pu=v_slack_pu).items()
            if v is not None}
    if options is None:
        options = OPFOptions.from_values(source="aggregation_gap.compare", **band)
    elif band:
        raise InputError(f"aggregation_gap.compare: {sorted(band)} given with options; the options "
                         "already set the voltage band (give one or the other)")
    kw = dict(options.model_kwargs(), construction="constant", dt_h=dt_h, hours=sessions.hours)
    extra = list(extra_devices)
    t0 = time.perf_counter()
    agg = OPFModel(network, load_p_kw, load_q_kvar,
                   extra + [without_time_sharing(env.storage_group("ev_stations", reactive=reactive))],
                   **kw).solve(solver=solver)
    t_agg = time.perf_counter() - t0
    dis = disaggregate(sessions, station_net_from_result(agg, "ev_stations", env.stations), env.stations)
    dis_evs = disaggregate(sessions, station_net_from_result(agg, "ev_stations", env.stations),
                           env.stations, priority="evs")
    out = {
        "evs_first_not_honoured": dis_evs.n_not_honoured,
        "evs_first_deviation_kwh": float(np.abs(dis_evs.deviation_kw).sum()),
        "n_reservations": len(dis.report), "loss_aggregated_kwh": agg.loss_kwh,
        "n_not_honoured": dis.n_not_honoured, "failure_rate": dis.failure_rate,
        "shortfall_kwh": float(dis.report["shortfall_kwh"].sum()),
        "max_deviation_kw": dis.max_deviation_kw, "seconds_aggregated": t_agg,
        "sessions": sessions, "envelopes": env, "result_aggregated": agg, "disaggregation": dis,
    }
    if exact:
        t0 = time.perf_counter()
        ex = OPFModel(network, load_p_kw, load_q_kvar,
                      extra + [without_time_sharing(exact_storage_group(sessions, "ev_exact", reactive=reactive))],
                      **kw).solve(solver=solver)
        t_ex = time.perf_counter() - t0
        pc, pdis = session_schedule_from_result(ex, "ev_exact", sessions.n)
        rep = verify(sessions, pc, pdis, tol_kw=1e-3, tol_kwh=1e-2)
        out.update(loss_exact_kwh=ex.loss_kwh, gap_kwh=ex.loss_kwh - agg.loss_kwh,
                   gap_pct=100 * (ex.loss_kwh - agg.loss_kwh) / ex.loss_kwh,
                   exact_not_honoured=int((~rep["honoured"]).sum()),
                   exact_shortfall_kwh=energy_not_delivered_kwh(rep),
                   seconds_exact=t_ex, result_exact=ex)
    return out


METRICS = ("n_reservations", "loss_aggregated_kwh", "loss_exact_kwh", "gap_kwh", "gap_pct",
           "n_not_honoured", "failure_rate", "shortfall_kwh", "max_deviation_kw",
           "exact_not_honoured", "exact_shortfall_kwh", "evs_first_not_honoured", "evs_first_deviation_kwh",
           "seconds_aggregated", "seconds_exact")
"""The scalar entries of :func:`compare`'s result (for tables)."""
