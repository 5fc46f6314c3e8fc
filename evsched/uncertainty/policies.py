r"""Four ways to run the EVs and inverters through a day that does not go as planned.

Every policy is evaluated on the same samples (:mod:`evsched.uncertainty.deviations`) and
ends in an executed day (:mod:`evsched.uncertainty.execution`) whose AC power flow gives the
metrics. All four use the study's per-EV model (one storage per EV session,
:func:`evsched.aggregation.exact_storage_group`) or, for ``mpc``, the station envelope
(:mod:`evsched.aggregation`) of the EVs it knows about; the objective is always the study's:
network loss + the chargers' conversion losses (+ the curtailment price when
``curtail_renewables``), within the voltage band.

``day_ahead`` — the certified plan, executed as planned
    The S3 (or S2) per-EV schedule of :func:`evsched.scenarios.build_s3` on the forecast, with
    its inverter set-points. Each EV that comes follows its own planned schedule as far as
    physically possible (:func:`~evsched.uncertainty.execution.execute`: no power before the
    realised arrival or after the realised departure, battery limits); no-shows draw nothing;
    nobody re-plans.

``mpc`` — receding-horizon re-dispatch every hour
    At the start of every hour :math:`t = 0..23` the dispatch centre solves the study's OPF
    over the rest of the day :math:`\tau = t..23` (shrinking horizon, as the day-ahead problem
    ends at midnight) with the realised load and availability of hour ``t`` and the forecast
    after it, and the **station envelope** of

    * the EVs it knows: plugged in now or before (realised arrival, declared departure and
      request), each from its *current* energy, with the individual reachable interval of
      :mod:`evsched.sessions` recomputed on the remaining presence;
    * the EVs still expected: reserved but not yet arrived, from their reserved arrival (or
      the next hour if already late) with their reserved need, weighted by the probability
      that they still come, :math:`w = (1-p)S(k) / (p + (1-p)S(k))` (Bayes, with
      :math:`S(k) = P(\delta^a > k)` and ``k`` the hours late so far; ``1 − p`` before the
      reserved arrival): a certainty-equivalent (expected) envelope.

    Only hour ``t`` is implemented: each station's net power is split among its plugged-in EVs
    (:meth:`MPC.split`): every EV first gets the least it must have now to still reach its
    obligation (and the most it may have), the rest is shared least-laxity-first; the station's
    reactive power in proportion to each charger's reactive headroom. Per-hour certification:
    each solve's relaxation gap is recorded; a step whose OPF is infeasible falls back to the
    EVs' minimum powers and zero reactive power (counted).

    Why the envelope and not one storage per EV: a re-solve with one storage per EV session
    (≈ 800 sessions on the default case) costs tens of times more than one with two envelope
    rows per station, and an MPC day is 24 re-solves; :mod:`evsched.uncertainty.bench` measures
    both (``results/bench/uncertainty.md``). The envelope is an outer approximation *of the
    future*; the hour that is implemented is always split exactly (a sum of intervals is the
    interval of the sums), so no EV is ever
    pushed outside its own reachable set. Each horizon length has one compiled model
    (``construction="rhs"``) reused across hours of all samples through
    :meth:`~evsched.model.OPFModel.update` (every station is kept ``active`` at every hour: a
    fixed variable pattern).
    :func:`evsched.disaggregation.disaggregate` (an LP over all sessions and the whole
    horizon, rebuilt at each call) would cost more than the OPF itself at every hour; the
    one-hour split above gives the same guarantee (EVs first, ``priority="evs"``).

``robust`` — a day-ahead schedule with margins sized to the uncertainty (no re-dispatch)
    A scenario-based chance-constrained plan, by **iterative constraint back-off** (Roald &
    Andersson, "Chance-constrained AC optimal power flow: reformulations and efficient
    algorithms", *IEEE Trans. Power Systems* 33(3), 2018): the per-EV OPF on the forecast with
    a tightened voltage band
    :math:`(\underline V + m^-_{i,t})^2 \le v_{i,t} \le (\overline V - m^+_{i,t})^2`; the plan
    is executed on ``n_scenarios`` training samples (an independent seed, every backtest
    residual day used in turn, no-shows at the model's rate, delays, request changes), each
    executed day goes through the AC power flow, and the margins become the empirical
    ``level`` quantile (default 1: the largest, i.e. the scenario approach of Calafiore &
    Campi, *IEEE TAC* 51(5), 2006) of the voltage drop (rise) of the executed day below
    (above) the plan, :math:`m \leftarrow \max(m, Q_{level}(V^{plan} - V^{k})^+)`, until no
    training scenario leaves the band or the margins stop growing. The margins are therefore
    sized by the no-show rate (fewer EVs → higher voltages at night, lower where planned V2G
    or reactive support is missing), the delays and the forecast error together. Each EV's
    plan is confined to its window shrunk by the ``level`` quantiles of the arrival delay and
    early departure when its need still fits, so that late arrivals within those quantiles
    find their plan intact; executed with the **deadline guard**
    (:func:`~evsched.uncertainty.execution.execute`), so that every EV that shows up gets its
    obligation. If a tightened band is infeasible, the margin increment is halved (up to three
    times) and the loop stops.

``hindsight`` — the optimum with perfect information (the lower bound)
    The per-EV OPF of the study on the sample's realised load, availability and realised
    sessions (only the EVs that come, their realised stays and obligations), built per sample
    with variables exactly where the realised EVs are plugged in. One compiled model with a
    fixed superset pattern (:attr:`~evsched.model.StorageGroup.active`: every reserved stay
    extended by the largest late departure) and data updates is available
    (``Hindsight(pattern="superset")``), but measured slower: the variables a sample pins to
    zero cost more interior-point time than the compile they save (:class:`Hindsight`).
    Certified like the study (relaxation gap and AC check); an infeasible sample is recorded
    with the solver's diagnosis.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evsched import scenarios
from evsched.aggregation import session_power_limit_kw, station_incidence
from evsched.disaggregation import session_schedule_from_result
from evsched.errors import InputError, OptimisationError
from evsched.model import OPFModel, StorageGroup
from evsched.model import constraints as fam
from evsched.sessions import Sessions, build_sessions
from evsched.uncertainty.deviations import (
    DeviationModel,
    ForecastErrors,
    Sample,
    draw_sample,
    nominal_sample,
    realise,
)
from evsched.uncertainty.execution import (
    V_TOL_PU,
    EVDay,
    RenewableDay,
    T,
    execute,
    execute_renewables,
    rows_to_48,
)

POLICIES = ("day_ahead", "mpc", "robust", "hindsight")
EV_GROUP = scenarios.EV_GROUP
V_LO, V_HI = "uq_v_lo_sq", "uq_v_hi_sq"
"""Names of the tightened voltage bounds [p.u.²] (extra data of the robust model)."""


# --- building blocks ------------------------------------------------------------------------------

def per_ev_case(cd):
    """``cd`` with the per-EV model (``ev_model='exact'``), whatever the case says."""
    c = cd.case
    if c.ev_model == "exact":
        return cd
    if "ev_model" in type(c).model_fields:
        return dataclasses.replace(cd, case=c.model_copy(update={"ev_model": "exact"}))
    return dataclasses.replace(cd, case=c.model_copy(update={"opf": c.opf.model_copy(update={"ev_model": "exact"})}))


def opf_kwargs(cd) -> dict:
    """The OPF options of the case (voltage band, slack voltage, converter losses and any
    optional families), as :func:`evsched.scenarios.opf_model` uses them."""
    c = cd.case
    opts = getattr(c, "opf_options", None)
    if opts is not None:
        return dict(opts.model_kwargs())
    return {"v_min_pu": c.v_min_pu, "v_max_pu": c.v_max_pu, "v_slack_pu": c.v_slack_pu,
            "count_converter_losses": c.count_converter_losses}


def ev_group(sessions: Sessions, reactive: bool, active=None) -> StorageGroup:
    """One storage per session (:func:`evsched.aggregation.exact_storage_group`), optionally
    with a fixed superset ``active`` pattern."""
    return StorageGroup(
        name=EV_GROUP, buses=sessions.station, p_charge_max_kw=sessions.p_charge_max_kw,
        p_discharge_max_kw=sessions.p_discharge_max_kw, energy_min_kwh=sessions.energy_min_kwh,
        energy_max_kwh=sessions.energy_max_kwh, energy_initial_kwh=0.0, eta_charge=sessions.eta,
        eta_discharge=sessions.eta, s_max_kva=sessions.s_max_kva, reactive=reactive, kind="ev_station",
        p_total_max_kw=session_power_limit_kw(sessions), active=active)


def renewables(cd, pv_avail_kw, wt_avail_kw, reactive: bool, hours=None):
    """The case's PV/WT groups (:func:`evsched.scenarios.renewable_groups`) on other availability."""
    sub = dataclasses.replace(cd, pv_avail_kw=pv_avail_kw, wt_avail_kw=wt_avail_kw,
                              hours=cd.hours if hours is None else hours)
    return scenarios.renewable_groups(sub, reactive)


def _opf(cd, load_p, load_q, devices, hours=None, families=None, **kw) -> OPFModel:
    """The study's OPF (:func:`opf_kwargs`) on other data; ``families`` replace families of
    the same name."""
    args = opf_kwargs(cd)
    if families:
        args["families"] = {**(args.get("families") or fam.FAMILIES), **families}
    return OPFModel(cd.network, load_p, load_q, devices, dt_h=cd.dt_h,
                    hours=cd.hours if hours is None else hours, **args, **kw)


def _by_name(res, name: str, column: str, n: int) -> np.ndarray:
    """(n × T) values of group ``name`` from a result's hour-major ``dispatch`` frame."""
    d = res.dispatch
    v = d.loc[d["name"] == name, column].to_numpy(float)
    return v.reshape(-1, n).T


def _voltages(res, network) -> np.ndarray:
    return res.voltages.pivot(index="bus", columns="hour", values="v_pu").loc[network.bus_ids].to_numpy()


@dataclass
class Plan:
    """A day-ahead dispatch: per-reservation EV schedule on the 48-h grid (N × 48) and the
    inverters' set-points (sites × 24); ``guard`` = execute with the deadline guard."""

    name: str
    ev_charge_kw: np.ndarray
    ev_discharge_kw: np.ndarray
    ev_q_kvar: np.ndarray
    pv_kw: np.ndarray
    pv_q_kvar: np.ndarray
    wt_kw: np.ndarray
    wt_q_kvar: np.ndarray
    pv_avail_kw: np.ndarray
    wt_avail_kw: np.ndarray
    voltages_pu: np.ndarray
    guard: bool = False
    info: dict = field(default_factory=dict)

    def execute(self, cd, sample: Sample) -> tuple[EVDay, RenewableDay]:
        """The plan on a sample (:func:`~evsched.uncertainty.execution.execute`)."""
        ev = execute(sample.actual, sample.show, sample.obligation_kwh, self.ev_charge_kw,
                     self.ev_discharge_kw, self.ev_q_kvar, guard=self.guard)
        ren = execute_renewables(cd, sample, self.pv_kw, self.pv_q_kvar, self.wt_kw, self.wt_q_kvar,
                                 self.pv_avail_kw, self.wt_avail_kw)
        return ev, ren


def plan_from_result(name: str, cd, sessions: Sessions, res, pv_avail, wt_avail, guard=False,
                     info=None) -> Plan:
    """A :class:`Plan` from a solved per-EV OPF (``sessions`` = the rows of its EV group)."""
    N = len(cd.reservations)
    pc, pd_ = session_schedule_from_result(res, EV_GROUP, sessions.n)
    q = _by_name(res, EV_GROUP, "q_kvar", sessions.n)
    c = cd.case
    ren = {}
    for kind, buses in (("pv", c.pv_buses), ("wt", c.wt_buses)):
        n = len(buses)
        ren[kind] = ((-_by_name(res, kind, "p_kw", n), _by_name(res, kind, "q_kvar", n)) if n
                     else (np.zeros((0, T)), np.zeros((0, T))))
    return Plan(name, rows_to_48(sessions, np.maximum(pc, 0.0), N),
                rows_to_48(sessions, np.maximum(pd_, 0.0), N), rows_to_48(sessions, q, N),
                ren["pv"][0], ren["pv"][1], ren["wt"][0], ren["wt"][1], pv_avail, wt_avail,
                _voltages(res, cd.network), guard, dict(info or {}))


# --- day_ahead ----------------------------------------------------------------------------------------

def day_ahead_plan(cd, reactive: bool = True, solver: str | None = None) -> Plan:
    """The study's certified S3 (``reactive``) or S2 per-EV schedule on the forecast
    (raises :class:`~evsched.errors.InexactRelaxationError` if not certified)."""
    cd = per_ev_case(cd)
    sc = (scenarios.build_s3 if reactive else scenarios.build_s2)(cd, solver=solver)
    return plan_from_result("day_ahead", cd, cd.sessions, sc.opf, cd.pv_avail_kw, cd.wt_avail_kw,
                            info={"scenario": sc.name, "loss_kwh": sc.loss_kwh, "verdict": sc.verdict(),
                                  "reservations_not_honoured": int((~sc.reservations["honoured"]).sum())})


# --- robust ---------------------------------------------------------------------------------------------

def _lower(m, slacks):
    keep = m.nonslack
    where = m.network.bus_ids[keep]
    return [fam.relax_lower(slacks, "voltage_limits (lower, tightened)", where, "bus", m.v[keep], m.data(V_LO)),
            fam.relax_upper(slacks, "voltage_limits (upper, tightened)", where, "bus", m.v[keep], m.data(V_HI))]


@fam.elastic_form(_lower)
def tightened_voltage_limits(m):
    r"""Voltage band with per-bus, per-hour back-off margins:
    :math:`(\underline V + m^-_{i,t})^2 \le v_{i,t} \le (\overline V - m^+_{i,t})^2` [p.u.²]
    (data ``uq_v_lo_sq``, ``uq_v_hi_sq``, non-slack buses × hours)."""
    keep = m.nonslack
    return [m.v[keep] >= m.data(V_LO), m.v[keep] <= m.data(V_HI)]


def shrunk_reservations(reservations: pd.DataFrame, model: DeviationModel, level: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Each reservation's window shrunk by the ``level`` quantiles of the arrival delay and of
    the early departure, where its reserved need still fits (else the reserved window);
    returns the frame and the mask of shrunk rows."""
    r = reservations.reset_index(drop=True)
    n = len(r)
    qa, qe = model.quantile_arrival_delay(level), model.quantile_early_departure(level)
    ones = np.ones(n)
    _, _, obl, _ = realise(r, np.ones(n, bool), qa * ones, -qe * ones, ones)
    e_dep = r["soc_departure_min"].to_numpy(float) * r["battery_kwh"].to_numpy(float)
    fits = obl >= e_dep - 1e-9
    frame, *_ = realise(r, np.ones(n, bool), qa * fits, -qe * fits, ones)
    return frame.drop(columns="show"), fits & ((qa > 0) | (qe > 0))


def robust_plan(cd, model: DeviationModel, errors: ForecastErrors, reactive: bool = True,
                n_scenarios: int = 60, level: float = 1.0, max_iter: int = 5, tol_pu: float = 1e-4,
                solver: str | None = None, pf=None) -> Plan:
    """The ``robust`` plan (module docstring); ``plan.info`` records the margins, iterations,
    training violations and the back-off history."""
    from evsched.uncertainty.acflow import RadialPowerFlow

    if not (0.5 <= level <= 1.0):
        raise InputError(f"robust_plan: level = {level!r} must be in [0.5, 1]")
    if not (1 <= n_scenarios <= 10_000):
        raise InputError(f"robust_plan: n_scenarios = {n_scenarios!r} must be in 1..10000")
    cd = per_ev_case(cd)
    c = cd.case
    pf = pf or RadialPowerFlow(cd.network, c.v_slack_pu)
    frame, shrunk = shrunk_reservations(cd.reservations, model, level)
    ses = build_sessions(frame)
    keep = np.setdiff1d(np.arange(cd.network.n_bus), [cd.network.slack])
    shape = (len(keep), cd.T)
    m_lo, m_hi = np.zeros(shape), np.zeros(shape)

    def bounds(lo, hi):
        return {V_LO: np.full(shape, c.v_min_pu) + lo, V_HI: np.full(shape, c.v_max_pu) - hi}

    def sq(b):
        return {k: v ** 2 for k, v in b.items()}

    opf = _opf(cd, cd.load_p_kw, cd.load_q_kvar,
               renewables(cd, cd.pv_avail_kw, cd.wt_avail_kw, reactive) + [ev_group(ses, reactive)],
               construction="rhs", families={"voltage_limits": tightened_voltage_limits},
               extra_data=sq(bounds(m_lo, m_hi)))
    train = model.with_(seed=(model.seed + 1) % 2 ** 32)
    samples = [draw_sample(train, cd.reservations, errors, k,
                           day_index=k % errors.n_days if model.forecast_error == "backtest" else None)
               for k in range(n_scenarios)]
    history, plan, last_ok = [], None, None
    for it in range(max_iter):
        lo_b = bounds(m_lo, m_hi)
        if np.any(lo_b[V_LO] > lo_b[V_HI] - 1e-4):
            history.append({"iteration": it, "status": "margins close the band"})
            break
        opf.update(extra_data=sq(lo_b))
        try:
            res = opf.solve(solver=solver)
        except OptimisationError as exc:
            history.append({"iteration": it, "status": f"infeasible: {str(exc)[:200]}"})
            if last_ok is None or it == max_iter - 1:
                break
            # halve the last increment (at most three times), else stop with the last plan
            prev_lo, prev_hi = last_ok
            for _ in range(3):
                m_lo, m_hi = prev_lo + 0.5 * (m_lo - prev_lo), prev_hi + 0.5 * (m_hi - prev_hi)
                opf.update(extra_data=sq(bounds(m_lo, m_hi)))
                try:
                    res = opf.solve(solver=solver)
                    break
                except OptimisationError:
                    res = None
            if res is None:
                break
        plan = plan_from_result("robust", cd, ses, res, cd.pv_avail_kw, cd.wt_avail_kw, guard=True)
        last_ok = (m_lo.copy(), m_hi.copy())
        V = np.stack([_executed_voltages(cd, plan, s, pf) for s in samples])[:, keep]
        vp = plan.voltages_pu[keep]
        drop = np.quantile(vp[None] - V, level, axis=0)
        rise = np.quantile(V - vp[None], level, axis=0)
        viol = int(((V < c.v_min_pu - V_TOL_PU) | (V > c.v_max_pu + V_TOL_PU)).sum())
        frac = float(((V < c.v_min_pu - V_TOL_PU) | (V > c.v_max_pu + V_TOL_PU)).any(axis=(1, 2)).mean())
        new_lo, new_hi = np.maximum(m_lo, np.maximum(drop, 0.0)), np.maximum(m_hi, np.maximum(rise, 0.0))
        history.append({"iteration": it, "status": "optimal", "loss_kwh": res.loss_kwh,
                        "max_margin_low_pu": float(m_lo.max()), "max_margin_high_pu": float(m_hi.max()),
                        "training_violations": viol, "training_samples_violating": frac})
        if frac <= 1.0 - level + 1e-12 or max(np.abs(new_lo - m_lo).max(), np.abs(new_hi - m_hi).max()) < tol_pu:
            break
        m_lo, m_hi = new_lo, new_hi
    if plan is None:
        raise OptimisationError(f"robust_plan: no feasible plan ({history[-1]['status'] if history else ''})")
    used_lo, used_hi = last_ok
    plan.info.update({"level": level, "n_scenarios": n_scenarios, "iterations": len(history),
                      "history": history, "margin_low_pu": used_lo, "margin_high_pu": used_hi,
                      "shrunk_windows": int(shrunk.sum()), "loss_kwh": history[-1].get("loss_kwh"),
                      "buses": cd.network.bus_ids[keep]})
    return plan


def _executed_voltages(cd, plan: Plan, sample: Sample, pf) -> np.ndarray:
    from evsched.uncertainty.execution import net_demand
    ev, ren = plan.execute(cd, sample)
    p, q = net_demand(cd, sample, ev, ren)
    return pf.run(p, q, cd.dt_h).v_pu


# --- hindsight ----------------------------------------------------------------------------------------

def superset_pattern(cd, max_arrival_delay_h: float, max_late_departure_h: float) -> np.ndarray:
    """(sessions × 24) every (session, hour) pair any sample may use: the reserved presence and
    the realised presence with the largest late departure, without and with the largest arrival
    delay (the realised stay starts no earlier than reserved and ends no later than with both:
    a later arrival may lift the 24-h cap of an overnight stay, see
    :func:`evsched.uncertainty.deviations.realise`)."""
    r = cd.reservations.reset_index(drop=True)
    n = len(r)
    mask = cd.sessions.presence > 0
    for delay in (0.0, float(max_arrival_delay_h)):
        ext, *_ = realise(r, np.ones(n, bool), np.full(n, delay), np.full(n, float(max_late_departure_h)), np.ones(n))
        s = Sample(-1, np.ones(n, bool), np.zeros(n), np.zeros(n), np.ones(n), "superset", cd.load_p_kw,
                   cd.load_q_kvar, cd.pv_avail_kw, cd.wt_avail_kw, ext, np.zeros(n), np.zeros(n), np.zeros(n))
        mask |= s.aligned(cd.sessions).presence > 0
    if max_arrival_delay_h > 0:  # the stay between the reserved arrival and the delayed one
        mask |= np.cumsum(mask, axis=1) > 0
        mask &= _until_last(mask)
    return mask


def _until_last(mask: np.ndarray) -> np.ndarray:
    """True up to (and including) the last True of each row."""
    return np.cumsum(mask[:, ::-1], axis=1)[:, ::-1] > 0


@dataclass
class Dispatch:
    """A policy's executed day before metrics: EVs (48-h grid), renewables, and notes."""

    ev: EVDay | None
    ren: RenewableDay | None
    status: str = "ok"
    message: str = ""
    stats: dict = field(default_factory=dict)
    voltages_pu: np.ndarray | None = None


class Hindsight:
    """The perfect-information optimum of each sample (module docstring).

    ``pattern="exact"`` (default) builds each sample's per-EV model with variables exactly
    where its realised EVs are plugged in (``construction="constant"``); ``"superset"`` compiles
    one model for all samples (``construction="rhs"``) with the fixed superset pattern of
    :func:`superset_pattern` and only updates data. Measured on the default case
    (:mod:`evsched.uncertainty.bench`): the superset re-solve costs about twice the CPU of a
    fresh exact build and solve, because the variables a sample pins to zero (no-shows,
    shorter stays) slow every interior-point iteration more than compiling costs; hence the
    default. Both give the same optimum (checked by a test).
    """

    def __init__(self, cd, errors: ForecastErrors, max_arrival_delay_h: float, max_late_departure_h: float,
                 reactive: bool = True, solver: str | None = None, pattern: str = "exact"):
        if pattern not in ("exact", "superset"):
            raise InputError(f"Hindsight: pattern = {pattern!r} must be 'exact' or 'superset'")
        self.cd = per_ev_case(cd)
        self.reactive, self.solver, self.pattern = reactive, solver, pattern
        self.active, self.model = None, None
        if pattern == "superset":  # compile once on canonical data (reproducible whoever builds it)
            self.active = superset_pattern(self.cd, max_arrival_delay_h, max_late_departure_h)
            template = nominal_sample(self.cd, errors, "none")
            self.model = _opf(self.cd, template.load_p_kw, template.load_q_kvar,
                              self._devices(template, self.active)[0], construction="rhs")
            self.model.solve(solver=solver, on_inexact="mark")

    def _devices(self, sample: Sample, active=None):
        ses = sample.aligned(self.cd.sessions)
        return renewables(self.cd, sample.pv_avail_kw, sample.wt_avail_kw, self.reactive) + [
            ev_group(ses, self.reactive, active=active)], ses

    def run(self, sample: Sample) -> Dispatch:
        cd = self.cd
        ses = sample.aligned(cd.sessions)
        compiled = self.model is not None and not np.any((ses.presence > 0) & ~self.active)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if compiled:
                    devices, ses = self._devices(sample, self.active)
                    self.model.update(load_p_kw=sample.load_p_kw, load_q_kvar=sample.load_q_kvar, devices=devices)
                    res = self.model.solve(solver=self.solver, on_inexact="mark")
                else:  # the sample's own pattern
                    devices, ses = self._devices(sample)
                    res = _opf(cd, sample.load_p_kw, sample.load_q_kvar, devices, construction="constant").solve(
                        solver=self.solver, on_inexact="mark")
        except OptimisationError as exc:
            return Dispatch(None, None, "infeasible", str(exc))
        plan = plan_from_result("hindsight", cd, ses, res, sample.pv_avail_kw, sample.wt_avail_kw)
        ev, ren = plan.execute(cd, sample)
        d = Dispatch(ev, ren, "ok" if res.exact else "inexact", "" if res.exact else res.inexactness_report(),
                     {"max_relaxation_gap_rel": res.max_relaxation_gap_rel, "opf_loss_kwh": res.loss_kwh,
                      "inaccurate": int(any("inaccurate" in str(w.message) for w in caught)),
                      "pattern": "superset" if compiled else "exact"},
                     plan.voltages_pu)
        d.stats["execution_change_kw"] = float(np.abs(ev.p_charge_kw - plan.ev_charge_kw).max()
                                               + np.abs(ev.p_discharge_kw - plan.ev_discharge_kw).max())
        return d


# --- mpc ----------------------------------------------------------------------------------------------

def reachable(f: np.ndarray, x_now, box_lo, box_hi, tgt_lo, tgt_hi, rc, rd) -> tuple[np.ndarray, np.ndarray]:
    r"""Reachable interval of each row's energy (relative to its current energy ``x_now``) at
    the end of each remaining step, the formula of :mod:`evsched.sessions` on the remaining
    presence ``f`` (rows × H):
    :math:`x_{lo} = \max(b_{lo}, -r_d c_{in}, g_{lo} - r_c c_{rem})`,
    :math:`x_{hi} = \min(b_{hi}, r_c c_{in}, g_{hi} + r_d c_{rem})` (box and target shifted by
    ``x_now``), ``x_lo`` snapped to ``x_hi`` where round-off crosses them."""
    c_in = np.cumsum(f, axis=1)
    c_rem = f.sum(axis=1, keepdims=True) - c_in
    x = x_now[:, None]
    lo = np.maximum.reduce([np.broadcast_to((box_lo - x_now)[:, None], f.shape), -rd[:, None] * c_in,
                            (tgt_lo[:, None] - x) - rc[:, None] * c_rem])
    hi = np.minimum.reduce([np.broadcast_to((box_hi - x_now)[:, None], f.shape), rc[:, None] * c_in,
                            (tgt_hi[:, None] - x) + rd[:, None] * c_rem])
    return np.minimum(lo, hi), hi


def _fill(amount: float, caps: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Give ``amount`` (≥ 0) to rows in ``order``, each up to its cap (water-filling)."""
    out = np.zeros_like(caps)
    c = caps[order]
    cum = np.cumsum(c)
    out[order] = np.clip(amount - (cum - c), 0.0, c)
    return out


class MPC:
    """Receding-horizon re-dispatch on the station envelope (module docstring)."""

    def __init__(self, cd, model: DeviationModel, errors: ForecastErrors, reactive: bool = True,
                 solver: str | None = None):
        self.cd = per_ev_case(cd)
        self.dev, self.reactive, self.solver = model, reactive, solver
        ses = self.cd.sessions
        self.res_ses = ses
        self.stations = self.cd.stations.stations
        self.A = station_incidence(ses, self.stations)
        self.eta_station = self.cd.stations.eta
        mode = ses.mode
        self.rate_ch = np.where(mode != "discharge", ses.charger_kw, 0.0)
        self.rate_dis = np.where(mode != "charge", ses.charger_kw, 0.0)
        self.rc, self.rd = ses.eta * self.rate_ch, self.rate_dis / ses.eta
        r = self.cd.reservations.reset_index(drop=True)
        self.first = ses.kind != "morning"
        self.a_res = np.where(self.first, r["arrival_hour"].to_numpy(float)[ses.res_index], 0.0)
        self.s_kva = ses.s_max_kva.max(axis=1) / np.maximum(ses.presence.max(axis=1), 1e-12)
        self.models: dict[int, OPFModel] = {}
        self.forecast = (self.cd.load_p_kw, self.cd.load_q_kvar, self.cd.pv_avail_kw, self.cd.wt_avail_kw)
        self.run(nominal_sample(self.cd, errors, "none"))  # compile every horizon on canonical data

    def _model(self, t: int, load_p, load_q, devices) -> OPFModel:
        m = self.models.get(t)
        if m is None:
            m = _opf(self.cd, load_p, load_q, devices, hours=np.arange(t, T), construction="rhs")
            self.models[t] = m
        else:
            m.update(load_p_kw=load_p, load_q_kvar=load_q, devices=devices)
        return m

    def station_group(self, f, lo, hi, w_known, w_expect) -> StorageGroup:
        """Two envelopes per station (2K rows, at the station buses): the EVs known now and the
        EVs still expected, weighted by ``w_known`` / ``w_expect`` (rows × 1)."""
        A = self.A
        H = f.shape[1]

        def both(x, scale=None):
            x = x if scale is None else x * scale[:, None]
            return np.vstack([A @ (w_known[:, None] * x), A @ (w_expect[:, None] * x)])

        return StorageGroup(
            name="ev_stations", buses=np.concatenate([self.stations, self.stations]),
            p_charge_max_kw=both(f, self.rate_ch), p_discharge_max_kw=both(f, self.rate_dis),
            energy_min_kwh=both(lo), energy_max_kwh=both(hi), energy_initial_kwh=0.0,
            eta_charge=np.concatenate([self.eta_station] * 2), eta_discharge=np.concatenate([self.eta_station] * 2),
            s_max_kva=both(f, self.s_kva), reactive=self.reactive, kind="ev_station",
            p_total_max_kw=both(f, self.res_ses.charger_kw), active=np.ones((2 * len(self.stations), H), bool))

    def split(self, P_target, Q_target, present, lo_x, hi_x, f_now, laxity, eta):
        """Per-EV net grid power and reactive power of hour t for the station targets (see
        module docstring); returns ``(p, q, deviation_kw)``."""
        g = lambda x: np.where(x >= 0, x / eta, x * eta)
        lo_p, hi_p = g(lo_x), g(hi_x)
        p0 = np.clip(0.0, lo_p, hi_p)
        p = np.zeros_like(lo_p)
        q = np.zeros_like(lo_p)
        dev = 0.0
        member = self.A.tocsr()
        for k in range(len(self.stations)):
            rows = member[k].indices
            rows = rows[present[rows]]
            if rows.size == 0:
                dev += abs(P_target[k])
                continue
            base = p0[rows]
            D = P_target[k] - base.sum()
            if D >= 0:
                add = _fill(D, hi_p[rows] - base, np.argsort(laxity[rows], kind="stable"))
                pk = base + add
            else:
                sub = _fill(-D, base - lo_p[rows], np.argsort(-laxity[rows], kind="stable"))
                pk = base - sub
            p[rows] = pk
            dev += abs(pk.sum() - P_target[k])
            head = np.sqrt(np.maximum((self.s_kva[rows] * f_now[rows]) ** 2 - pk ** 2, 0.0))
            tot = head.sum()
            if tot > 0 and Q_target[k] != 0:
                q[rows] = np.clip(Q_target[k] * head / tot, -head, head)
        return p, q, dev

    def run(self, sample: Sample) -> Dispatch:
        cd, ses = self.cd, self.res_ses
        c = cd.case
        act = sample.aligned(ses)
        S = ses.n
        x = np.zeros(S)
        pc_rows, pd_rows, q_rows = np.zeros((S, T)), np.zeros((S, T)), np.zeros((S, T))
        n_pv, n_wt = len(c.pv_buses), len(c.wt_buses)
        pv_out, pv_q = np.zeros((n_pv, T)), np.zeros((n_pv, T))
        wt_out, wt_q = np.zeros((n_wt, T)), np.zeros((n_wt, T))
        lp, lq, fpv, fwt = self.forecast
        stats = {"fallback_steps": 0, "inexact_steps": 0, "inaccurate_steps": 0, "max_relaxation_gap_rel": 0.0,
                 "station_deviation_kwh": 0.0}
        message = ""
        for t in range(T):
            known = act.presence[:, :t + 1].sum(axis=1) > 0
            expect = self.first & ~known
            f = np.where(known[:, None], act.presence[:, t:], ses.presence[:, t:])
            f = f.copy()
            f[expect, 0] = 0.0
            x_now = np.where(known, x, 0.0)

            def pick(a, b, known=known):
                return np.where(known, a, b)

            tgt_lo = pick(act.target_min_kwh, ses.target_min_kwh)
            lo, hi = reachable(f, x_now, pick(act.soc_box_min_kwh, ses.soc_box_min_kwh),
                               pick(act.soc_box_max_kwh, ses.soc_box_max_kwh), tgt_lo,
                               pick(act.target_max_kwh, ses.target_max_kwh), self.rc, self.rd)
            # never above what the EV still needs (charging beyond it is never optimal in the
            # per-EV model; in an envelope it would stand in for other EVs' needs)
            hi = np.maximum(np.minimum(hi, np.maximum(tgt_lo - x_now, 0.0)[:, None]), lo)
            alive = f.sum(axis=1) > 0
            w_known = np.where(known & alive, 1.0, 0.0)
            w_expect = np.where(expect & alive, self.dev.show_posterior(t - self.a_res), 0.0)
            load_p = np.concatenate([sample.load_p_kw[:, t:t + 1], lp[:, t + 1:]], axis=1)
            load_q = np.concatenate([sample.load_q_kvar[:, t:t + 1], lq[:, t + 1:]], axis=1)
            pv = np.concatenate([sample.pv_avail_kw[:, t:t + 1], fpv[:, t + 1:]], axis=1)
            wt = np.concatenate([sample.wt_avail_kw[:, t:t + 1], fwt[:, t + 1:]], axis=1)
            hours = np.arange(t, T)
            devices = renewables(cd, pv, wt, self.reactive, hours) + [self.station_group(f, lo, hi, w_known, w_expect)]
            present = known & (act.presence[:, t] > 0)
            rem_f = f.sum(axis=1)
            need = np.maximum(np.where(known, act.target_min_kwh, ses.target_min_kwh) - x_now, 0.0)
            laxity = rem_f - need / np.maximum(self.rc, 1e-12)
            try:
                m = self._model(t, load_p, load_q, devices)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    res = m.solve(solver=self.solver, on_inexact="mark")
                stats["inaccurate_steps"] += int(any("inaccurate" in str(w.message) for w in caught))
            except OptimisationError as exc:
                stats["fallback_steps"] += 1
                message = message or f"hour {t}: {str(exc)[:300]}"
                g = lambda v: np.where(v >= 0, v / ses.eta, v * ses.eta)
                p = np.where(present, np.clip(0.0, g(lo[:, 0]), g(hi[:, 0])), 0.0)
                q = np.zeros(S)
                pv_out[:, t], wt_out[:, t] = sample.pv_avail_kw[:, t], sample.wt_avail_kw[:, t]
            else:
                stats["max_relaxation_gap_rel"] = max(stats["max_relaxation_gap_rel"], res.max_relaxation_gap_rel)
                stats["inexact_steps"] += int(not res.exact)
                st = res.storage
                st = st[(st["name"] == "ev_stations") & (st["hour"] == t)]
                K = len(self.stations)
                P_target = (st["p_charge_kw"] - st["p_discharge_kw"]).to_numpy(float)[:K]  # known EVs
                d = res.dispatch
                now = d[d["hour"] == t]
                Q_target = now.loc[now["name"] == "ev_stations", "q_kvar"].to_numpy(float)[:K]
                for kind, out, qq in (("pv", pv_out, pv_q), ("wt", wt_out, wt_q)):
                    if out.shape[0]:
                        out[:, t] = -now.loc[now["name"] == kind, "p_kw"].to_numpy(float)
                        qq[:, t] = now.loc[now["name"] == kind, "q_kvar"].to_numpy(float)
                p, q, dev = self.split(P_target, Q_target, present, lo[:, 0], hi[:, 0], act.presence[:, t],
                                       laxity, ses.eta)
                stats["station_deviation_kwh"] += dev * cd.dt_h
            pc, pd_ = np.maximum(p, 0.0), np.maximum(-p, 0.0)
            pc_rows[:, t], pd_rows[:, t], q_rows[:, t] = pc, pd_, q
            x = x + (ses.eta * pc - pd_ / ses.eta) * cd.dt_h
        N = len(cd.reservations)
        plan_ch, plan_dis = rows_to_48(act, pc_rows, N), rows_to_48(act, pd_rows, N)
        ev = execute(sample.actual, sample.show, sample.obligation_kwh, plan_ch, plan_dis,
                     rows_to_48(act, q_rows, N), guard=False)
        stats["execution_change_kw"] = float(max(np.abs(ev.p_charge_kw - plan_ch).max(),
                                                 np.abs(ev.p_discharge_kw - plan_dis).max()))
        ren = execute_renewables(cd, sample, pv_out, pv_q, wt_out, wt_q, sample.pv_avail_kw, sample.wt_avail_kw)
        status = "ok" if stats["fallback_steps"] == 0 else "fallback"
        return Dispatch(ev, ren, status, message, stats)
