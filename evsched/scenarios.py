"""Scenarios S0-S3 of the study: each a short function composing devices on one :class:`CaseData`.

=====  ===========================================  ==========================================
id     what is in the network                       what is computed
=====  ===========================================  ==========================================
S0     base load + PV + WT (unity pf) + EVs          AC power flow; every EV charges at its
       charging uncontrolled                        charger rating from arrival until its
                                                    departure need is met (no V2G)
S1     base load only                               AC power flow
S2     base load + PV + WT (unity pf) + stations     SOCP: station active power only; no
                                                    reactive power anywhere
S3     as S2                                        SOCP: station P and Q within the chargers'
                                                    kVA circle, PV/WT Q within sqrt(S² − P²)
=====  ===========================================  ==========================================

Every scenario returns a :class:`ScenarioResult` with the tidy frames of the results
contract and an AC validation: its dispatch (net demand per bus and hour) is re-run through
:func:`evsched.powerflow.run_ac_powerflow`. For S0/S1 the AC power flow *is* the result.
Voltage limits only bind in S2 and S3; S0 and S1 report violations.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evsched import disaggregation, metrics
from evsched.aggregation import uncontrolled_station_demand
from evsched.case import CaseData
from evsched.errors import InexactRelaxationError, InputError
from evsched.frames import FlowFrames, tidy
from evsched.model import DeviceGroup, OPFModel
from evsched.powerflow import PowerFlowResult, run_ac_powerflow

SCENARIOS = ("S0", "S1", "S2", "S3")
DESCRIPTIONS = {
    "S0": "uncontrolled charging: base load + PV + WT (unity pf) + EVs at full power from arrival; AC power flow",
    "S1": "base load only; AC power flow",
    "S2": "base load + EV + PV + WT; SOCP optimises EV station active power only (no reactive power)",
    "S3": "as S2 + EV station reactive power (charger kVA circle) + PV/WT reactive power (inverter circle); SOCP",
}
DISPATCH_COLUMNS = ["hour", "bus", "device", "p_kw", "q_kvar"]
AC_VOLTAGE_TOL_PU = 1e-4
"""Largest |V_AC − V_SOCP| [p.u.] of a certified result."""
AC_LOSS_TOL_REL = 0.005
"""Largest |ζ_SOCP − ζ_AC| / ζ_AC of a certified result (0.5 %)."""


@dataclass
class ScenarioResult(FlowFrames):
    """One scenario's results in the shape of the results contract.

    Attributes
    ----------
    name, description : scenario id ('S0'..'S3') and what it is
    dispatch : ``hour, bus, device, p_kw, q_kvar`` (device ∈ load, ev_station, pv, wt; load
        convention: positive = drawn from the grid)
    voltages : ``hour, bus, v_pu`` (SOCP for S2/S3, AC power flow for S0/S1)
    branches : ``hour, from_bus, to_bus, p_kw, q_kvar, loss_kw``
    ac : the AC power flow of the dispatch (for S0/S1 the same numbers as above; None if
        an optimised scenario was run with ``validate=False``)
    opf : the :class:`~evsched.model.OPFResult` (S2/S3) or None
    solver : 'pandapower' (AC power flow) or the conic solver's name
    solve_seconds : wall time of the power flow or the SOCP solve [s]
    max_relaxation_gap : max |ℓ·v − P² − Q²| [p.u.²] (NaN for the power-flow scenarios)
    """

    name: str
    description: str
    dispatch: pd.DataFrame
    voltages: pd.DataFrame
    branches: pd.DataFrame
    ac: PowerFlowResult
    opf: object
    solver: str
    solve_seconds: float
    max_relaxation_gap: float
    dt_h: float = 1.0
    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    slack_bus: int = 1
    reservations: pd.DataFrame | None = None
    curtailment_kwh: float = 0.0

    @property
    def is_optimised(self) -> bool:
        return self.opf is not None

    @property
    def exact(self) -> bool:
        """The exactness verdict: True for S0/S1 (their result *is* an AC power flow); for an
        optimised scenario, the cones are tight (:attr:`OPFResult.exact`) **and** the AC power
        flow of the dispatch reproduces the SOCP voltages to :data:`AC_VOLTAGE_TOL_PU` and its
        loss to :data:`AC_LOSS_TOL_REL` (False if not AC-validated)."""
        if self.opf is None:
            return True
        if not self.opf.exact or self.ac is None:
            return False
        chk = self.ac_check()
        return bool(chk["max_voltage_mismatch_pu"] <= AC_VOLTAGE_TOL_PU
                    and abs(chk["loss_rel_diff"]) <= AC_LOSS_TOL_REL)

    def verdict(self) -> str:
        """One line: why the result is (or is not) certified."""
        if self.opf is None:
            return f"{self.name}: AC power flow (exact by definition)"
        chk = self.ac_check()
        return (f"{self.name}: relative cone gap {self.opf.max_relaxation_gap_rel:.1e} "
                f"(tolerance {self.opf.gap_tol_rel:g}); AC power flow of the dispatch: max |ΔV| "
                f"{chk['max_voltage_mismatch_pu']:.1e} p.u. (tolerance {AC_VOLTAGE_TOL_PU:g}), loss "
                f"{100 * chk['loss_rel_diff']:+.3f} % (tolerance ±{100 * AC_LOSS_TOL_REL:g} %): "
                + ("exact" if self.exact else "NOT exact"))

    def equivalent_load(self) -> pd.Series:
        return metrics.equivalent_load(self.dispatch)

    def ac_check(self) -> dict:
        """``max_voltage_mismatch_pu``, ``loss_rel_diff`` and ``max_loading_mismatch_pct``
        (max |loading_SOCP − loading_AC| over rated branch-hours [percentage points]) of the
        SOCP vs the AC power flow (NaN for S0/S1, whose result is the AC power flow)."""
        if self.opf is None or self.ac is None:
            return {"max_voltage_mismatch_pu": float("nan"), "loss_rel_diff": float("nan"),
                    "max_loading_mismatch_pct": float("nan")}
        out = metrics.ac_mismatch(self.ac.voltages, self.voltages, self.ac.loss_kwh, self.loss_kwh)
        key = ["hour", "from_bus", "to_bus"]
        la = self.ac.branches.set_index(key)["loading_pct"]
        lo = self.branches.set_index(key)["loading_pct"].reindex(la.index)
        out["max_loading_mismatch_pct"] = float((la - lo).abs().max()) if la.notna().any() else float("nan")
        return out

    def violations(self, tol_pu: float = 0.0) -> pd.DataFrame:
        """AC voltages outside the band (rows of ``ac.voltages``, or of ``voltages`` if not validated)."""
        v = self.voltages if self.ac is None else self.ac.voltages
        return metrics.voltage_violations(v, self.v_min_pu, self.v_max_pu, tol_pu)

    def summary(self) -> dict:
        """One row of ``summary.csv`` (no timings: those go to ``timings.json``, so that the
        results tables are byte-identical across reruns)."""
        row = {"scenario": self.name}
        row.update(metrics.scenario_metrics(self.dispatch, self.voltages, self.branches, self.dt_h))
        row["peak_valley_substation_kw"] = metrics.peak_valley(
            metrics.substation_power(self.branches, self.slack_bus))
        loading = self.branches["loading_pct"]  # current / rating [%], NaN for unrated lines
        row["max_loading_pct"] = float(loading.max()) if loading.notna().any() else float("nan")
        chk = self.ac_check()
        rep = self.reservations
        row.update({"max_relaxation_gap": self.max_relaxation_gap,
                    "max_relaxation_gap_rel": (float("nan") if self.opf is None
                                               else self.opf.max_relaxation_gap_rel),
                    "ac_loss_kwh": float("nan") if self.ac is None else self.ac.loss_kwh,
                    "ac_max_voltage_mismatch_pu": chk["max_voltage_mismatch_pu"],
                    "exact": self.exact,
                    "reservations_not_honoured": (float("nan") if rep is None
                                                  else int((~rep["honoured"]).sum())),
                    "energy_not_delivered_kwh": (float("nan") if rep is None
                                                 else disaggregation.energy_not_delivered_kwh(rep)),
                    "curtailment_kwh": self.curtailment_kwh,
                    "solver": self.solver})
        return row


# --- dispatch building blocks (tidy frames) ------------------------------------------------

def _tidy(matrix: np.ndarray, buses, device: str, hours, q: np.ndarray | None = None) -> pd.DataFrame:
    """Dispatch rows ``hour, bus, device, p_kw, q_kvar`` of one device kind (q = 0 if not given)."""
    df = tidy(matrix, hours, {"bus": buses, "device": device}, "p_kw")
    df["q_kvar"] = (np.zeros_like(matrix) if q is None else q).T.ravel()
    return df


def base_load_dispatch(cd: CaseData) -> pd.DataFrame:
    """Base load rows (device 'load') for every bus except the substation."""
    keep = np.setdiff1d(np.arange(cd.network.n_bus), [cd.network.slack])
    return _tidy(cd.load_p_kw[keep], cd.network.bus_ids[keep], "load", cd.hours, cd.load_q_kvar[keep])


def renewable_dispatch(cd: CaseData) -> pd.DataFrame:
    """PV and WT at unity power factor, all available power taken (p = −availability)."""
    c = cd.case
    return pd.concat([_tidy(-cd.pv_avail_kw, c.pv_buses, "pv", cd.hours),
                      _tidy(-cd.wt_avail_kw, c.wt_buses, "wt", cd.hours)], ignore_index=True)


def net_demand(dispatch: pd.DataFrame, cd: CaseData) -> tuple[np.ndarray, np.ndarray]:
    """Sum a dispatch frame into (bus × hour) net demand ``(p_kw, q_kvar)`` in network order."""
    g = dispatch.groupby(["bus", "hour"])[["p_kw", "q_kvar"]].sum()
    full = pd.MultiIndex.from_product([cd.network.bus_ids, cd.hours], names=["bus", "hour"])
    g = g.reindex(full, fill_value=0.0)
    shape = (cd.network.n_bus, cd.T)
    return g["p_kw"].to_numpy().reshape(shape), g["q_kvar"].to_numpy().reshape(shape)


# --- the scenarios ---------------------------------------------------------------------------

def _power_flow_scenario(name: str, cd: CaseData, dispatch: pd.DataFrame) -> ScenarioResult:
    p, q = net_demand(dispatch, cd)
    t0 = time.perf_counter()
    ac = run_ac_powerflow(cd.network, p, q, v_slack_pu=cd.case.v_slack_pu, dt_h=cd.dt_h, hours=cd.hours)
    wall = time.perf_counter() - t0
    return ScenarioResult(name, DESCRIPTIONS[name], dispatch[DISPATCH_COLUMNS], ac.voltages, ac.branches,
                          ac, None, "pandapower", wall, float("nan"), cd.dt_h,
                          cd.case.v_min_pu, cd.case.v_max_pu, int(cd.network.slack_bus))


def build_s0(cd: CaseData) -> ScenarioResult:
    """S0: uncontrolled charging + PV/WT at unity power factor; AC power flow.

    Every EV charges at its charger rating from arrival until ``soc_departure_min`` is
    reached (:func:`evsched.aggregation.uncontrolled_station_demand`: the same energy S2/S3
    must deliver; overnight stays fold onto the morning of the representative day; no V2G).
    """
    stations = cd.stations.stations
    ev = uncontrolled_station_demand(cd.reservations, cd.network, dt_h=cd.dt_h)[cd.network.bus_index(stations)]
    d = pd.concat([base_load_dispatch(cd), renewable_dispatch(cd),
                   _tidy(ev, stations, "ev_station", cd.hours)], ignore_index=True)
    return _power_flow_scenario("S0", cd, d)


def build_s1(cd: CaseData) -> ScenarioResult:
    """S1: base load only; AC power flow."""
    return _power_flow_scenario("S1", cd, base_load_dispatch(cd))


def renewable_groups(cd: CaseData, reactive: bool) -> list[DeviceGroup]:
    r"""PV and WT as :class:`DeviceGroup`\ s; with ``reactive`` ``|q| ≤ sqrt(S² − p²)``,
    S = ``inverter_kva_ratio`` × capacity [kVA]; else ``q = 0``.

    Must-take (default): ``p = −a`` with ``a`` the availability [kW]. With
    ``case.curtail_renewables``: ``−a ≤ p ≤ 0`` and the objective gains
    ``w · Σ (a + p) · Δt`` [kWh], the curtailed energy priced at ``w = curtailment_penalty``
    kWh of loss per kWh (``0 < w < 1``). Why ``w < 1``: when must-take generation pushes reverse
    flow against the upper voltage limit, the SOC relaxation can "absorb" surplus power in
    fictitious losses ``r ℓ`` with ``ℓ v > P² + Q²`` (an inexact relaxation), at a cost of
    1 kWh per kWh; curtailing is then strictly cheaper, so the optimiser curtails instead and
    the cones stay tight. Why ``w`` not tiny: curtailing also lowers the network loss, at a
    marginal rate of a few per cent here, so ``w`` must exceed that or energy is thrown away
    just to save loss."""
    c = cd.case
    curtail = c.curtail_renewables
    groups = []
    for kind, buses, cap, avail in (("pv", c.pv_buses, c.pv_capacity_kw, cd.pv_avail_kw),
                                    ("wt", c.wt_buses, c.wt_capacity_kw, cd.wt_avail_kw)):
        if not len(buses):
            continue
        s = c.inverter_kva_ratio * np.asarray(cap, float)
        groups.append(DeviceGroup(kind, buses, -avail, 0.0 * avail if curtail else -avail,
                                  q_min_kvar=-s if reactive else 0.0, q_max_kvar=s if reactive else 0.0,
                                  s_max_kva=s if reactive else None, kind=kind,
                                  energy_cost=c.curtailment_penalty if curtail else 0.0))
    return groups


def curtailment_kwh(dispatch: pd.DataFrame, cd: CaseData) -> float:
    """Curtailed renewable energy ``Σ (a + p) · Δt`` [kWh] of a dispatch (PV/WT rows, load
    convention: ``p = −`` generation), against the case's availability ``a``."""
    c = cd.case
    avail = sum(float(a.sum()) for a, b in ((cd.pv_avail_kw, c.pv_buses), (cd.wt_avail_kw, c.wt_buses))
                if len(b))
    gen = -float(dispatch.loc[dispatch["device"].isin(["pv", "wt"]), "p_kw"].sum())
    return max(avail - gen, 0.0) * cd.dt_h


EV_GROUP = "ev_stations"
"""Name of the EV storage group in the S2/S3 models."""


def station_group(cd: CaseData, reactive: bool):
    """The EVs of the stations as one :class:`~evsched.model.StorageGroup`, by ``case.ev_model``:

    * ``"exact"`` (default): one storage row per EV session at its station's bus
      (:func:`evsched.aggregation.exact_storage_group`): every schedule the optimiser can choose
      is a set of individually feasible EV schedules, so every reservation is honoured by
      construction; with ``reactive`` each charger's ``(p_ch − p_dis)² + q² ≤ S²``.
    * ``"envelope"``: the paper's station aggregate (:mod:`evsched.aggregation`), one row per
      station, ``(p_ch − p_dis)² + q² ≤ S_t²`` with S_t the kVA plugged in at hour t. An outer
      approximation: the split onto the EVs (:func:`evsched.disaggregation.disaggregate`) may
      leave some reservations short, which the summary reports.
    """
    if cd.case.ev_model == "exact":
        from evsched.aggregation import exact_storage_group
        return exact_storage_group(cd.sessions, name=EV_GROUP, reactive=reactive, kind="ev_station")
    return cd.stations.storage_group(name=EV_GROUP, reactive=reactive)


def reservation_check(cd: CaseData, res) -> pd.DataFrame:
    """Per-reservation verification (:func:`evsched.disaggregation.verify`, independent of the
    optimiser) of an S2/S3 solution: the per-EV schedule itself (``ev_model="exact"``) or the
    split of the station schedule onto the EVs (``"envelope"``)."""
    from evsched.disaggregation import disaggregate, session_schedule_from_result, station_net_from_result, verify
    if cd.case.ev_model == "exact":
        pc, pdis = session_schedule_from_result(res, EV_GROUP, cd.sessions.n)
        return verify(cd.sessions, np.maximum(pc, 0.0), np.maximum(pdis, 0.0))
    st = cd.stations.stations
    return disaggregate(cd.sessions, station_net_from_result(res, EV_GROUP, st), st).report


def opf_model(cd: CaseData, reactive: bool, construction: str = "constant") -> OPFModel:
    """The S2 (``reactive=False``) or S3 (``reactive=True``) model of a case: base load as
    data, PV/WT (:func:`renewable_groups`: must-take, or curtailable at a price), the EVs
    (:func:`station_group`: per EV or the station envelope), voltage band and slack voltage
    from the case (its :attr:`~evsched.schema.Params.opf_options`). The objective is the network
    loss plus, when ``case.count_converter_losses`` (default), the chargers' conversion losses, so
    that cycling energy through the batteries is never free, plus the curtailment price when
    curtailment is on."""
    devices = renewable_groups(cd, reactive) + [station_group(cd, reactive)]
    return OPFModel(cd.network, cd.load_p_kw, cd.load_q_kvar, devices, dt_h=cd.dt_h, hours=cd.hours,
                    construction=construction, **cd.case.opf_options.model_kwargs())


def _from_opf(name: str, cd: CaseData, res, on_inexact: str = "raise") -> ScenarioResult:
    """Wrap a solved :class:`~evsched.model.OPFResult` as a scenario result: AC power flow
    of its dispatch, exactness verdict, per-reservation check, curtailment.

    ``on_inexact="raise"`` raises :class:`~evsched.errors.InexactRelaxationError` when the
    verdict is not exact; ``"mark"`` returns the result with ``exact = False``."""
    c = cd.case
    dev = res.dispatch.groupby(["hour", "bus", "device"], as_index=False)[["p_kw", "q_kvar"]].sum()
    dispatch = pd.concat([base_load_dispatch(cd), dev], ignore_index=True)[DISPATCH_COLUMNS]
    p, q = net_demand(dispatch, cd)
    ac = run_ac_powerflow(cd.network, p, q, v_slack_pu=c.v_slack_pu, dt_h=cd.dt_h, hours=cd.hours)
    out = ScenarioResult(name, DESCRIPTIONS[name], dispatch, res.voltages, res.branches, ac, res,
                         res.solver, res.solve_seconds, res.max_relaxation_gap, cd.dt_h,
                         c.v_min_pu, c.v_max_pu, int(cd.network.slack_bus),
                         reservations=reservation_check(cd, res),
                         curtailment_kwh=curtailment_kwh(dispatch, cd))
    if not out.exact and on_inexact == "raise":
        raise InexactRelaxationError(out.verdict() + (". " + res.inexactness_report() if not res.exact else
                                                      ": the SOCP and the AC power flow of its dispatch disagree"))
    return out


def _opf_scenario(name: str, cd: CaseData, reactive: bool, solver: str | None = None,
                  on_inexact: str = "raise") -> ScenarioResult:
    res = opf_model(cd, reactive).solve(solver=solver, on_inexact=on_inexact)
    return _from_opf(name, cd, res, on_inexact)


def build_s2(cd: CaseData, solver: str | None = None, on_inexact: str = "raise") -> ScenarioResult:
    """S2: optimise the stations' active power only; no reactive power anywhere; SOCP.

    The result is certified (relaxation gap and AC power flow, :attr:`ScenarioResult.exact`);
    an inexact one raises unless ``on_inexact="mark"``.
    """
    return _opf_scenario("S2", cd, reactive=False, solver=solver, on_inexact=on_inexact)


def build_s3(cd: CaseData, solver: str | None = None, on_inexact: str = "raise") -> ScenarioResult:
    """S3: S2 + station reactive power (charger circle) + PV/WT reactive power (inverter circle)."""
    return _opf_scenario("S3", cd, reactive=True, solver=solver, on_inexact=on_inexact)


BUILDERS = {"S0": build_s0, "S1": build_s1, "S2": build_s2, "S3": build_s3}


def run_scenario(name: str, cd: CaseData) -> ScenarioResult:
    """Run one scenario by id ('S0'..'S3')."""
    if name not in BUILDERS:
        raise InputError(f"scenario {name!r}: must be one of {list(BUILDERS)}")
    return BUILDERS[name](cd)


def run_all(cd: CaseData, names=SCENARIOS) -> dict[str, ScenarioResult]:
    """Run the scenarios in order; returns ``{name: ScenarioResult}``."""
    return {n: run_scenario(n, cd) for n in names}
