"""Constraint families of the multi-period branch-flow (DistFlow) model, one function each.

Notation (per unit, ``S_base`` = network.s_base_kva, ``V_base`` = nominal voltage):
branch k = (i → j) from parent i to child j, hours t = 0..T−1.

=========  ===========================  ===================================
symbol     cvxpy variable               meaning
=========  ===========================  ===================================
P, Q       ``m.P``, ``m.Q`` (K × T)     sending-end active/reactive flow on k
ℓ          ``m.l`` (K × T)              squared current magnitude |I_k|²
v          ``m.v`` (N × T)              squared voltage magnitude |V_i|²
d, e       expressions (N × T)          net active/reactive demand per bus
=========  ===========================  ===================================

Every function is vectorised over (element × hour) with sparse incidence matrices
``C_from``/``C_to`` (N × K); none loops over buses, branches or hours. Each returns a list of
cvxpy constraints; the builder keeps them by family name so that duals and infeasibility
diagnostics can be reported per family.

A limit family may have an *elastic* form ``f(m, slacks)`` (its limits relaxed by
non-negative slacks recorded in ``slacks``), used by :mod:`evsched.model.diagnose`:
:data:`ELASTIC` for the defaults, :func:`elastic_form` for custom families.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # pragma: no cover
    from evsched.model.builder import OPFModel


def nodal_power_balance(m: "OPFModel") -> list[cp.Constraint]:
    r"""Active and reactive power balance at every non-slack bus j and hour t.

    .. math::
        \sum_{k=(i,j)} (P_{k,t} - r_k \ell_{k,t}) - \sum_{k=(j,h)} P_{k,t} = d_{j,t}, \qquad
        \sum_{k=(i,j)} (Q_{k,t} - x_k \ell_{k,t}) - \sum_{k=(j,h)} Q_{k,t} = e_{j,t}

    i.e. ``C_to (P − r∘ℓ) − C_from P = d`` with ``d`` the net demand [p.u.] (load convention,
    base load plus device powers). Shunt admittances are neglected (none in Baran & Wu).
    The slack row is dropped: the substation supplies whatever is needed.
    """
    net, keep = m.network, m.nonslack
    Ct = net.C_to[keep]
    Cf = net.C_from[keep]
    R = sp.diags(net.r_pu)
    X = sp.diags(net.x_pu)
    d_p, d_q = m.net_demand_pu()
    return [
        Ct @ (m.P - R @ m.l) - Cf @ m.P == d_p[keep],
        Ct @ (m.Q - X @ m.l) - Cf @ m.Q == d_q[keep],
    ]


def voltage_drop(m: "OPFModel") -> list[cp.Constraint]:
    r"""Voltage drop along every branch k = (i → j) and hour t.

    .. math::
        v_{j,t} = v_{i,t} - 2 (r_k P_{k,t} + x_k Q_{k,t}) + (r_k^2 + x_k^2)\,\ell_{k,t}

    with ``v`` the squared voltage magnitude [p.u.²]; exact for the radial branch-flow
    model once the phase angles are recovered (always possible on a tree).
    """
    net = m.network
    A = (net.C_from - net.C_to).T.tocsr()  # K × N: v_i − v_j
    R, X = sp.diags(net.r_pu), sp.diags(net.x_pu)
    Z2 = sp.diags(net.r_pu ** 2 + net.x_pu ** 2)
    return [A @ m.v == 2 * (R @ m.P + X @ m.Q) - Z2 @ m.l]


def branch_current_cone(m: "OPFModel") -> list[cp.Constraint]:
    r"""Second-order cone relaxation of the branch current definition.

    The exact model has :math:`\ell_{k,t} v_{i,t} = P_{k,t}^2 + Q_{k,t}^2`; the relaxation
    keeps the convex side

    .. math::
        \ell_{k,t}\, v_{i,t} \ge P_{k,t}^2 + Q_{k,t}^2
        \iff \left\| \begin{bmatrix} 2P_{k,t} \\ 2Q_{k,t} \\ \ell_{k,t} - v_{i,t} \end{bmatrix}
        \right\|_2 \le \ell_{k,t} + v_{i,t}

    (a rotated cone, written as a standard SOC per branch and hour). The relaxation is exact
    on radial feeders under mild conditions (Farivar & Low 2013; Gan, Li, Topcu & Low 2015);
    :meth:`OPFResult.relaxation_gap` measures it after every solve.
    """
    K, T = m.P.shape
    v_from = m.network.C_from.T @ m.v  # K × T: sending-end squared voltage
    n = K * T

    def flat(e):
        return cp.reshape(e, (1, n), order="F")

    X = cp.vstack([flat(2 * m.P), flat(2 * m.Q), flat(m.l - v_from)])
    return [cp.SOC(cp.reshape(m.l + v_from, (n,), order="F"), X, axis=0)]


def voltage_limits(m: "OPFModel") -> list[cp.Constraint]:
    r"""Voltage band at every non-slack bus: :math:`\underline V^2 \le v_{j,t} \le \overline V^2` [p.u.²]."""
    keep = m.nonslack
    return [m.v[keep] >= m.v_min_pu ** 2, m.v[keep] <= m.v_max_pu ** 2]


def slack_voltage(m: "OPFModel") -> list[cp.Constraint]:
    r"""Fixed substation voltage :math:`v_{0,t} = V_0^2` [p.u.²] for every hour."""
    return [m.v[m.network.slack] == m.v_slack_pu ** 2]


def device_bounds(m: "OPFModel") -> list[cp.Constraint]:
    r"""Box bounds of every :class:`DeviceGroup`:
    :math:`\underline p \le p \le \overline p`, :math:`\underline q \le q \le \overline q` [p.u.]."""
    cons = []
    for g in m.device_vars.values():
        if g["p"] is not None:
            cons += [g["p"] >= m.data(f"{g['name']}.p_min"),
                     g["p"] <= m.data(f"{g['name']}.p_max")]
        if g["q"] is not None:
            cons += [g["q"] >= m.data(f"{g['name']}.q_min"),
                     g["q"] <= m.data(f"{g['name']}.q_max")]
    return cons


def apparent_power_limits(m: "OPFModel") -> list[cp.Constraint]:
    r"""Inverter / charger apparent-power circles :math:`p_{i,t}^2 + q_{i,t}^2 \le s_{i,t}^2` [p.u.],
    one cone per device and hour, for every device with a rating and a reactive variable."""
    cons = []
    for g in m.device_vars.values():
        s = g["group"].s_max_kva
        if s is None or g["q"] is None:
            continue
        n_el = s.size
        X = cp.vstack([cp.reshape(g["p"], (1, n_el), order="F"), cp.reshape(g["q"], (1, n_el), order="F")])
        t = cp.reshape(m.data(f"{g['name']}.s_max"), (n_el,), order="F")
        cons.append(cp.SOC(t, X, axis=0))
    for g in m.storage_vars.values():  # on the active (device, step) pairs only
        if g["x_q"] is None or not g["active"].size:
            continue
        X = cp.vstack([cp.reshape(g["x_ch"] - g["x_dis"], (1, g["active"].size), order="F"),
                       cp.reshape(g["x_q"], (1, g["active"].size), order="F")])
        cons.append(cp.SOC(m.data(f"{g['name']}.s_max"), X, axis=0))
    return cons


def storage_power_limits(m: "OPFModel") -> list[cp.Constraint]:
    r"""Charge and discharge power of every :class:`StorageGroup`:
    :math:`0 \le p^{ch} \le \overline p^{ch}`, :math:`0 \le p^{dis} \le \overline p^{dis}` [p.u.]
    (non-negativity is declared on the variables) and, where a time-sharing limit is given,
    :math:`p^{ch} + p^{dis} \le \overline p^{tot}` (a charger serves one direction at a time).
    Written on the active (device, step) pairs only: elsewhere the powers are identically zero
    (no variable exists, see :meth:`OPFModel._storage_variables`)."""
    cons = []
    for g in m.storage_vars.values():  # x: the powers on the active (device, step) pairs
        if not g["active"].size:
            continue
        cons += [g["x_ch"] <= m.data(f"{g['name']}.p_ch_max"),
                 g["x_dis"] <= m.data(f"{g['name']}.p_dis_max")]
        if g["group"].p_total_max_kw is not None:
            cons.append(g["x_ch"] + g["x_dis"] <= m.data(f"{g['name']}.p_total_max"))
    return cons


def storage_energy(m: "OPFModel") -> list[cp.Constraint]:
    r"""Energy state and envelope of every :class:`StorageGroup` [p.u.·h].

    .. math::
        E_{i,t} = E_{i,0} + \Delta t \sum_{\tau \le t} \left(\eta^c_i p^{ch}_{i,\tau}
                  - p^{dis}_{i,\tau} / \eta^d_i\right), \qquad
        \underline E_{i,t} \le E_{i,t} \le \overline E_{i,t}

    with ``E`` at the end of step t. Written with ``cumsum`` along the hour axis, so no
    separate state variable is needed. The envelope is imposed on the active (device, step)
    pairs only, with the bounds of the inactive steps folded onto the last active step before
    them (``E`` does not change in between; see :func:`evsched.model.builder._fold_energy_bounds`).
    """
    cons = []
    for g in m.storage_vars.values():
        E = storage_energy_expression(m, g)
        if not g["active"].size:
            continue
        E_active = cp.reshape(E, (E.size,), order="F")[g["active"]]
        cons += [E_active >= m.data(f"{g['name']}.e_min"),
                 E_active <= m.data(f"{g['name']}.e_max")]
    return cons


def storage_energy_expression(m: "OPFModel", g: dict):
    """Net energy added since the start, ``E − E0`` (n × T) [p.u.·h]."""
    grp = g["group"]
    eta_c = sp.diags(grp.eta_charge)
    inv_eta_d = sp.diags(1.0 / grp.eta_discharge)
    flow = eta_c @ g["p_ch"] - inv_eta_d @ g["p_dis"]
    return m.dt_h * cp.cumsum(flow, axis=1)


def rated_branches(m: "OPFModel"):
    """Indices of the branches with a finite rating (rows of ``branch.l_max``), fixed per model."""
    return np.flatnonzero(np.isfinite(m.branch_rating_a[:, 0]))


def branch_current_limits(m: "OPFModel") -> list[cp.Constraint]:
    r"""Thermal limit (ampacity) of every rated branch k and hour t, linear in ℓ:

    .. math::
        \ell_{k,t} \le \overline{\ell}_{k,t} = \left(\frac{\overline I_{k,t}}{I_{base}}\right)^2,
        \qquad I_{base} = \frac{S_{base}}{\sqrt 3\, V_{base}}

    with :math:`\overline I` the ampacity [A] (``Network.branch_rating_a``, or the model's
    ``branch_rating_a``) and ℓ the squared series current [p.u.]. The rating enters as data
    (``branch.l_max``, rated branches × hours, p.u.²), so a re-solve with other ratings
    updates the right-hand side only and the diagnosis can relax it
    (:func:`elastic_branch_current_limits`). Unrated branches (NaN) get no row. Because the
    cone makes ℓ the exact |I|² when the relaxation is tight, this limits the physical current
    at both ends of the line (no shunt admittance).
    """
    rated = rated_branches(m)
    return [m.l[rated] <= m.data("branch.l_max")] if rated.size else []


def substation_power_pu(m: "OPFModel"):
    r"""Power drawn through the substation in every hour [p.u.], ``(P_0, Q_0)`` as (T,) expressions:

    .. math::
        P_{0,t} = \sum_{k=(0,j)} P_{k,t} + d_{0,t}, \qquad Q_{0,t} = \sum_{k=(0,j)} Q_{k,t} + e_{0,t}

    (sending-end flows of the branches leaving the slack bus plus any net demand connected at
    the slack bus itself, which the balance family leaves out)."""
    slack = m.network.slack
    d_p, d_q = m.net_demand_pu()
    row = m.network.C_from[[slack]]
    return (cp.reshape(row @ m.P + d_p[[slack]], (m.T,), order="F"),
            cp.reshape(row @ m.Q + d_q[[slack]], (m.T,), order="F"))


def transformer_rating(m: "OPFModel") -> list[cp.Constraint]:
    r"""Apparent-power rating of the substation transformer, one cone per hour:

    .. math::
        P_{0,t}^2 + Q_{0,t}^2 \le \overline S_t^{\,2}
        \iff \left\| \begin{bmatrix} P_{0,t} \\ Q_{0,t} \end{bmatrix} \right\|_2 \le \overline S_t

    with :math:`(P_0, Q_0)` from :func:`substation_power_pu` and :math:`\overline S` the
    rating [p.u.] (``transformer.s_max`` = ``transformer_kva`` / S_base, data: re-solves
    update the right-hand side only). The slack bus is the transformer's secondary
    busbar; the transformer's own losses are not modelled (its rating is checked on the
    power it passes)."""
    P0, Q0 = substation_power_pu(m)
    return [cp.SOC(m.data("transformer.s_max"), cp.vstack([cp.reshape(P0, (1, m.T), order="F"),
                                                          cp.reshape(Q0, (1, m.T), order="F")]), axis=0)]


FAMILIES = {
    "nodal_power_balance": nodal_power_balance,
    "voltage_drop": voltage_drop,
    "branch_current_cone": branch_current_cone,
    "slack_voltage": slack_voltage,
    "voltage_limits": voltage_limits,
    "device_bounds": device_bounds,
    "apparent_power_limits": apparent_power_limits,
    "storage_power_limits": storage_power_limits,
    "storage_energy": storage_energy,
}
"""The default model: every family, in build order."""

OPTIONAL = {
    "branch_current_limits": branch_current_limits,
    "transformer_rating": transformer_rating,
}
"""Families a run adds on demand (run parameters ``thermal_limits`` and ``transformer_kva``;
:func:`thermal_families`); their data come from the model's ``branch_rating_a`` and
``transformer_kva``."""


def thermal_families(families=None, lines: bool = True, transformer: bool = False) -> dict:
    """``families`` (default :data:`FAMILIES`) plus :func:`branch_current_limits` (``lines``)
    and :func:`transformer_rating` (``transformer``)."""
    out = dict(FAMILIES if families is None else families)
    if lines:
        out["branch_current_limits"] = branch_current_limits
    if transformer:
        out["transformer_rating"] = transformer_rating
    return out


# --- elastic (penalised-slack) forms, for the infeasibility diagnosis -------------------------
@dataclass
class Slack:
    """One block of elastic slack created by an elastic family.

    ``variable`` (rows × T, ≥ 0) relaxes a limit; row ``i`` concerns ``where[i]`` (a bus,
    station, branch, ... of type ``kind``), column ``t`` hour ``t``. ``label`` names the family
    and the side of the limit, e.g. ``"voltage_limits (lower, v_pu ≥ v_min)"``.
    """

    label: str
    variable: cp.Variable
    where: Sequence
    kind: str


def relax_upper(slacks: list[Slack], label: str, where, kind: str, lhs, bound) -> cp.Constraint:
    r"""The elastic form of ``lhs ≤ bound``: :math:`\mathrm{lhs} \le \mathrm{bound} + \sigma`,
    :math:`\sigma \ge 0` of the shape of ``lhs``; records σ in ``slacks``."""
    s = cp.Variable(lhs.shape, nonneg=True, name=f"slack[{label}]")
    slacks.append(Slack(label, s, list(where), kind))
    return lhs <= bound + s


def relax_lower(slacks: list[Slack], label: str, where, kind: str, lhs, bound) -> cp.Constraint:
    r"""The elastic form of ``lhs ≥ bound``: :math:`\mathrm{lhs} \ge \mathrm{bound} - \sigma`,
    :math:`\sigma \ge 0`; records σ in ``slacks``."""
    s = cp.Variable(lhs.shape, nonneg=True, name=f"slack[{label}]")
    slacks.append(Slack(label, s, list(where), kind))
    return lhs >= bound - s


def branch_labels(m: "OPFModel") -> list[str]:
    """``"i-j"`` (external bus ids) for every branch, in branch order: the ``where`` of a
    slack on a branch family."""
    ids = m.network.bus_ids
    return [f"{a}-{b}" for a, b in zip(ids[m.network.branch_from], ids[m.network.branch_to])]


def elastic_voltage_limits(m: "OPFModel", slacks: list[Slack]) -> list[cp.Constraint]:
    r"""Elastic :func:`voltage_limits`:
    :math:`\underline V^2 - \sigma^-_{j,t} \le v_{j,t} \le \overline V^2 + \sigma^+_{j,t}`,
    :math:`\sigma^\pm \ge 0` [p.u.²], one slack per non-slack bus and hour."""
    keep = m.nonslack
    where = m.network.bus_ids[keep]
    return [relax_lower(slacks, "voltage_limits (lower, v_pu ≥ v_min)", where, "bus", m.v[keep], m.v_min_pu ** 2),
            relax_upper(slacks, "voltage_limits (upper, v_pu ≤ v_max)", where, "bus", m.v[keep], m.v_max_pu ** 2)]


def elastic_storage_energy(m: "OPFModel", slacks: list[Slack]) -> list[cp.Constraint]:
    r"""Elastic :func:`storage_energy`:
    :math:`\underline E_{i,t} - \varepsilon^-_{i,t} \le E_{i,t} \le \overline E_{i,t} + \varepsilon^+_{i,t}`,
    :math:`\varepsilon^\pm \ge 0` [p.u.·h], one slack per station and hour (``E`` from
    :func:`storage_energy_expression`, so it follows any change of the energy model)."""
    cons = []
    for g in m.storage_vars.values():
        E = storage_energy_expression(m, g)
        name = g["name"]
        where = [f"{name}[{i}] at bus {b}" for i, b in enumerate(g["group"].buses)]
        grp = g["group"]
        e0 = grp.energy_initial_kwh[:, None] / m.s_base
        lo = grp.energy_min_kwh / m.s_base - e0   # the unfolded envelope: slacks per (device, hour)
        hi = grp.energy_max_kwh / m.s_base - e0
        cons += [relax_lower(slacks, f"storage_energy (lower, E ≥ E_min) of '{name}'", where, "station",
                             E, lo),
                 relax_upper(slacks, f"storage_energy (upper, E ≤ E_max) of '{name}'", where, "station",
                             E, hi)]
    return cons


def elastic_branch_current_limits(m: "OPFModel", slacks: list[Slack]) -> list[cp.Constraint]:
    r"""Elastic :func:`branch_current_limits`:
    :math:`\ell_{k,t} \le \overline\ell_{k,t} + \sigma_{k,t}`, :math:`\sigma \ge 0` [p.u.²],
    one slack per rated branch and hour; the diagnosis names the lines ``"i-j"`` and hours."""
    rated = rated_branches(m)
    if not rated.size:
        return []
    labels = [branch_labels(m)[k] for k in rated]
    return [relax_upper(slacks, "branch_current_limits (upper, ℓ ≤ I_max²)", labels, "branch",
                        m.l[rated], m.data("branch.l_max"))]


def elastic_transformer_rating(m: "OPFModel", slacks: list[Slack]) -> list[cp.Constraint]:
    r"""Elastic :func:`transformer_rating`:
    :math:`\|(P_{0,t}, Q_{0,t})\|_2 \le \overline S_t + \sigma_t`, :math:`\sigma \ge 0` [p.u.],
    one slack per hour."""
    P0, Q0 = substation_power_pu(m)
    s = cp.Variable((1, m.T), nonneg=True, name="slack[transformer_rating]")
    slacks.append(Slack("transformer_rating (upper, |S_0| ≤ S_max)", s,
                        [f"substation transformer (bus {m.network.slack_bus})"], "transformer"))
    X = cp.vstack([cp.reshape(P0, (1, m.T), order="F"), cp.reshape(Q0, (1, m.T), order="F")])
    return [cp.SOC(m.data("transformer.s_max") + cp.reshape(s, (m.T,), order="F"), X, axis=0)]


ELASTIC = {
    "voltage_limits": elastic_voltage_limits,
    "storage_energy": elastic_storage_energy,
    "branch_current_limits": elastic_branch_current_limits,
    "transformer_rating": elastic_transformer_rating,
}
"""Elastic forms of the default and optional (:data:`OPTIONAL`) limit families, by family
name. Every other default family
stays hard in the diagnosis: the balance, voltage-drop, cone and slack-voltage families are
physics, and relaxing the power limits as well would make the attribution ambiguous (an
unmet energy need could be charged to either the power or the energy limit)."""


def elastic_form(elastic):
    """Decorator: declare ``elastic`` (``f(m, slacks) -> constraints``) as the elastic form of
    a custom limit family, e.g.::

        def elastic_line_current(m, slacks):
            return [relax_upper(slacks, "line_current (ℓ ≤ cap)", branch_labels(m), "branch",
                                m.l, m.data("cap"))]

        @elastic_form(elastic_line_current)
        def line_current(m):
            return [m.l <= m.data("cap")]
    """
    def declare(family):
        family.elastic = elastic
        return family
    return declare


def elastic_of(name: str, family):
    """The elastic form of ``family`` registered under ``name``, or None (the family stays hard).

    A family's own declaration (:func:`elastic_form`) wins; otherwise :data:`ELASTIC` applies
    only if ``family`` is the default (or optional) family of that name (a replaced family
    under a default name would otherwise be diagnosed with the wrong constraint).
    """
    own = getattr(family, "elastic", None)
    if own is not None:
        return own
    return ELASTIC.get(name) if (FAMILIES.get(name) or OPTIONAL.get(name)) is family else None
