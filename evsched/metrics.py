r"""The study's metrics, computed from the tidy frames of the results contract.

All functions take the tidy frames every scenario returns (``dispatch``: ``hour, bus, device,
p_kw, q_kvar``; ``voltages``: ``hour, bus, v_pu``; ``branches``: ``hour, from_bus, to_bus,
p_kw, q_kvar, loss_kw``) and a step length ``dt_h`` [h]. Powers use the load convention
(positive = drawn from the grid) and are step averages; ``hour`` is the step's start hour
(0, 1, ... at ``resolution_min: 60``; 0, 0.25, ... at 15, ``dt_h = 0.25``), so every sum
over steps below is an energy only once multiplied by ``Δt = dt_h`` (:func:`energy_kwh`;
:func:`step_length_h` recovers Δt from the ``hour`` column). Peak-valley differences compare
step averages: at 15 minutes they see the intra-hour peaks an hourly mean smooths away.

==========================  ===============================================================
metric                      definition
==========================  ===============================================================
equivalent load [kW]        :math:`P_{eq}(t) = \sum_{i} \big(P^{load}_{i,t} + P^{ch}_{i,t}
                            - P^{dis}_{i,t} - P^{PV}_{i,t} - P^{WT}_{i,t}\big)`
                            = the sum of the ``p_kw`` column of ``dispatch`` per hour
peak-valley [kW]            :math:`\max_t P_{eq}(t) - \min_t P_{eq}(t)`
substation peak-valley [kW] the same on :math:`P_0(t)`, the active power at the slack bus
                            (``peak_valley_substation_kw``: losses included)
loss ζ [kWh]                :math:`\zeta = \Delta t \sum_{t}\sum_{k} r_k I_{k,t}^2`
                            (``loss_kw`` summed over branches and hours, times Δt)
voltage deviation Γ [p.u.h] :math:`\Gamma = \Delta t \sum_t \sum_i |V_{i,t} - 1|`
                            (all buses, substation included)
relaxation gap [p.u.²]      :math:`\max_{k,t} |\ell_{k,t} v_{i,t} - P_{k,t}^2 - Q_{k,t}^2|`
AC mismatch                 :math:`\max_{i,t} |V^{AC}_{i,t} - V^{SOCP}_{i,t}|` [p.u.] and
                            :math:`(\zeta^{SOCP} - \zeta^{AC}) / \zeta^{AC}`
percent change [%]          :math:`100\,(x_{new} - x_{ref}) / x_{ref}`
==========================  ===============================================================

The equivalent load excludes the network losses (it is the net demand the buses present,
not what the substation delivers); this is the curve whose peak and valley a scheduler
can move.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from evsched.errors import InputError


def _need(df: pd.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; have {list(df.columns)}")


def equivalent_load(dispatch: pd.DataFrame) -> pd.Series:
    """Equivalent load ``P_eq(t)`` [kW]: Σ over buses and devices of ``p_kw`` per hour.

    With the load convention this is base load + EV charging − EV discharging − PV − WT.
    Returns a Series indexed by ``hour`` (name ``p_eq_kw``).
    """
    _need(dispatch, ["hour", "p_kw"], "dispatch")
    return dispatch.groupby("hour")["p_kw"].sum().rename("p_eq_kw")


def equivalent_load_by_device(dispatch: pd.DataFrame) -> pd.DataFrame:
    """Hour × device table of summed ``p_kw`` [kW] (columns load, ev_station, pv, wt when present)."""
    _need(dispatch, ["hour", "device", "p_kw"], "dispatch")
    return dispatch.pivot_table(index="hour", columns="device", values="p_kw", aggfunc="sum",
                                fill_value=0.0)


def step_length_h(hours) -> float:
    """Step length Δt [h] of a time column (the smallest difference between distinct step
    start hours; 1.0 for a single step)."""
    h = np.unique(np.asarray(hours, dtype=float))
    return float(np.diff(h).min()) if h.size > 1 else 1.0


def energy_kwh(p_kw, dt_h: float = 1.0) -> float:
    """Energy of a power series of step averages [kW] over its steps of ``dt_h`` hours:
    ``Δt · Σ_t p(t)`` [kWh] (a constant 100 kW over a day is 2400 kWh at any step length)."""
    return float(np.asarray(p_kw, dtype=float).sum() * dt_h)


def peak_valley(p_eq) -> float:
    """Peak-to-valley difference ``max_t P_eq(t) − min_t P_eq(t)`` [kW]."""
    p = np.asarray(p_eq, dtype=float)
    if p.size == 0:
        raise InputError("peak_valley: the equivalent load curve is empty")
    return float(p.max() - p.min())


def substation_power(branches: pd.DataFrame, slack_bus) -> pd.Series:
    """Active power drawn at the substation per hour [kW]: Σ ``p_kw`` of the branches leaving
    the slack bus (sending-end flows, so network losses are included), indexed by ``hour``."""
    _need(branches, ["hour", "from_bus", "p_kw"], "branches")
    out = branches[branches["from_bus"] == slack_bus]
    if out.empty:
        raise InputError(f"substation_power: no branch leaves the slack bus {slack_bus}")
    return out.groupby("hour")["p_kw"].sum().rename("p_substation_kw")


def loss_split(branches: pd.DataFrame, voltages: pd.DataFrame, network, dt_h: float = 1.0) -> dict:
    r"""The loss split into its active and reactive parts [kWh]:

    .. math::
        \zeta_P = \Delta t \sum_{t,k} r_k \frac{P_{k,t}^2}{V_{i,t}^2}, \qquad
        \zeta_Q = \Delta t \sum_{t,k} r_k \frac{Q_{k,t}^2}{V_{i,t}^2}

    with the sending-end flows ``P, Q`` of ``branches`` and the sending-end voltage ``V_i``
    (per unit on the network's base). ``ζ_P + ζ_Q`` equals ζ up to the difference between
    sending-end and mean flows. ``ζ_Q`` is what reactive power supplied next to the loads can
    remove; an active-power-only schedule can at best remove ``ζ_P``.
    Returns ``loss_p_kwh``, ``loss_q_kwh``.
    """
    _need(branches, ["hour", "from_bus", "to_bus", "p_kw", "q_kvar"], "branches")
    _need(voltages, ["hour", "bus", "v_pu"], "voltages")
    r = network.branch_table()[["from_bus", "to_bus", "r_ohm"]]
    b = branches.merge(r, on=["from_bus", "to_bus"], validate="many_to_one")
    b = b.merge(voltages.rename(columns={"bus": "from_bus"}), on=["hour", "from_bus"], validate="many_to_one")
    if len(b) != len(branches):
        raise InputError("loss_split: branches and voltages do not cover the same (hour, bus) pairs")
    sb = network.s_base_kva
    r_pu = b["r_ohm"] / network.z_base_ohm
    scale = r_pu / b["v_pu"] ** 2 * sb * dt_h
    return {"loss_p_kwh": float((scale * (b["p_kw"] / sb) ** 2).sum()),
            "loss_q_kwh": float((scale * (b["q_kvar"] / sb) ** 2).sum())}


def loss_per_hour(branches: pd.DataFrame) -> pd.Series:
    """Active loss per hour ``Σ_k r_k I_k,t²`` [kW], indexed by ``hour``."""
    _need(branches, ["hour", "loss_kw"], "branches")
    return branches.groupby("hour")["loss_kw"].sum().rename("loss_kw")


def loss_kwh(branches: pd.DataFrame, dt_h: float = 1.0) -> float:
    """Total active loss ζ = Δt · Σ_t Σ_k loss_kw [kWh]."""
    _need(branches, ["loss_kw"], "branches")
    return float(branches["loss_kw"].sum() * dt_h)


def voltage_deviation(voltages: pd.DataFrame, dt_h: float = 1.0, v_ref_pu: float = 1.0) -> float:
    """Voltage deviation Γ = Δt · Σ_t Σ_i |V_i,t − v_ref| [p.u.·h] (all buses)."""
    _need(voltages, ["v_pu"], "voltages")
    return float((voltages["v_pu"] - v_ref_pu).abs().sum() * dt_h)


def voltage_range(voltages: pd.DataFrame) -> tuple[float, float]:
    """``(vmin_pu, vmax_pu)`` over all buses and hours."""
    _need(voltages, ["v_pu"], "voltages")
    return float(voltages["v_pu"].min()), float(voltages["v_pu"].max())


def voltage_violations(voltages: pd.DataFrame, v_min_pu: float = 0.95, v_max_pu: float = 1.05,
                       tol_pu: float = 0.0) -> pd.DataFrame:
    """Rows of ``voltages`` outside ``[v_min − tol, v_max + tol]`` (an empty frame if none)."""
    v = voltages["v_pu"]
    return voltages[(v < v_min_pu - tol_pu) | (v > v_max_pu + tol_pu)]


def ac_mismatch(ac_voltages: pd.DataFrame, opt_voltages: pd.DataFrame,
                ac_loss_kwh: float, opt_loss_kwh: float) -> dict:
    """AC validation numbers: ``max_voltage_mismatch_pu`` = max |V_ac − V_opt| over
    (hour, bus) and ``loss_rel_diff`` = (ζ_opt − ζ_ac) / ζ_ac."""
    va = ac_voltages.set_index(["hour", "bus"])["v_pu"]
    vo = opt_voltages.set_index(["hour", "bus"])["v_pu"].reindex(va.index)
    if vo.isna().any():
        raise InputError("ac_mismatch: the two voltage tables do not cover the same (hour, bus) pairs")
    return {"max_voltage_mismatch_pu": float((va - vo).abs().max()),
            "loss_rel_diff": (opt_loss_kwh - ac_loss_kwh) / ac_loss_kwh if ac_loss_kwh else float("nan")}


def pct_change(new: float, ref: float) -> float:
    """Percent change ``100 · (new − ref) / ref`` (NaN when ``ref`` is 0)."""
    return 100.0 * (new - ref) / ref if ref else float("nan")


def scenario_metrics(dispatch: pd.DataFrame, voltages: pd.DataFrame, branches: pd.DataFrame,
                     dt_h: float = 1.0) -> dict:
    """The three headline metrics plus the voltage range of one scenario.

    Returns ``peak_valley_kw, loss_kwh, voltage_deviation_pu, vmin_pu, vmax_pu``.
    """
    vmin, vmax = voltage_range(voltages)
    return {
        "peak_valley_kw": peak_valley(equivalent_load(dispatch)),
        "loss_kwh": loss_kwh(branches, dt_h),
        "voltage_deviation_pu": voltage_deviation(voltages, dt_h),
        "vmin_pu": vmin, "vmax_pu": vmax,
    }
