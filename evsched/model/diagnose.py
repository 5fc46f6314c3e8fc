"""Locate why an OPF is infeasible: re-solve with elastic (penalised-slack) limits.

Every limit family that declares an elastic form (:data:`evsched.model.constraints.ELASTIC`
for the defaults, :func:`evsched.model.constraints.elastic_form` for custom ones) is replaced
by it, e.g. for the voltage band and the storage energy envelopes::

    v ≥ V_min² − σ⁻,   v ≤ V_max² + σ⁺,   E ≥ E_min − ε⁻,   E ≤ E_max + ε⁺,   σ, ε ≥ 0

and the probe (a :meth:`OPFModel.clone` of the model with those families: same data, custom
families and custom data included) minimises

.. math::
    10^4 \\sum \\sigma + \\sum_{k,t} r_k \\ell_{k,t}.

Non-zero slacks name the family, hours, and buses / stations / branches that bind, worst
first. Families without an elastic form stay hard; if even the elastic probe is infeasible,
those hard families are inconsistent on their own and are named.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np

from evsched.model import constraints as fam
from evsched.sessions import hour_label

SLACK_TOL = 1e-6
PENALTY = 1e4


def _bound(elastic, slacks):
    """The family ``m -> elastic(m, slacks)`` (what the builder calls)."""
    def family(m):
        return elastic(m, slacks)
    return family


def elastic_probe(model):
    """``(probe, slacks, hard)``: a constant-built clone of ``model`` whose limit families are
    elastic, the slack blocks they created, and the names of the families left hard."""
    slacks: list[fam.Slack] = []
    families, hard = {}, []
    for name, family in model.families.items():
        elastic = fam.elastic_of(name, family)
        if elastic is None:
            families[name] = family
            hard.append(name)
        else:
            families[name] = _bound(elastic, slacks)
    probe = model.clone(families=families, construction="constant")
    return probe, slacks, hard


def describe_slack(model, slack: fam.Slack) -> str | None:
    """``"<label> binds at hour(s) [...] for n <kind>(s), worst first [...]; largest ..."``,
    or None if the slack is zero."""
    val = np.asarray(slack.variable.value, dtype=float)
    if val.ndim == 1:
        val = val[:, None]
    bad = np.argwhere(val > SLACK_TOL)
    if len(bad) == 0:
        return None
    hours = sorted({hour_label(model.hours[t]) for _, t in bad}, key=lambda h: (isinstance(h, str), h))
    severity = val.max(axis=1)
    order = [i for i in np.argsort(-severity, kind="stable") if severity[i] > SLACK_TOL]
    where = [str(slack.where[i]) for i in order]
    i_w, t_w = np.unravel_index(int(np.argmax(val)), val.shape)
    return (f"{slack.label} binds at hour(s) {hours} for {len(where)} {slack.kind}(s), worst first "
            f"{where[:12]}" + (" …" if len(where) > 12 else "")
            + f"; largest violation {float(val.max()):.3g} p.u. at {slack.kind} {slack.where[i_w]}, "
            f"hour {hour_label(model.hours[t_w])}")


def locate_infeasibility(model, solver: str) -> str:
    """Human-readable account of which family, hours and buses/stations/branches make
    ``model`` infeasible (see the module docstring)."""
    try:
        probe, slacks, hard = elastic_probe(model)
    except Exception as exc:  # a custom family failing on the probe must not hide the original error
        return f"Diagnosis failed: building the elastic probe raised {type(exc).__name__}: {exc}."
    if not slacks:
        return (f"No limit family of this model has an elastic form; the hard families {hard} are "
                "inconsistent.")
    penalty = cp.sum(cp.hstack([cp.sum(s.variable) for s in slacks]))
    elastic = cp.Problem(cp.Minimize(PENALTY * penalty + probe.loss_pu), probe.problem.constraints)
    try:
        elastic.solve(solver=solver)
    except cp.SolverError as exc:
        return f"Diagnosis failed: the elastic re-solve raised {exc}."
    relaxed = sorted({n for n in model.families if n not in hard})
    if elastic.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return (f"Infeasible even with {relaxed} relaxed: the hard families {hard} are inconsistent, "
                "e.g. an energy need that cannot be met at the charger ratings.")
    parts = [p for p in (describe_slack(model, s) for s in slacks) if p]
    if not parts:
        return "The elastic re-solve needed no slack: the original failure is numerical; try another solver."
    return "Infeasible because: " + "; ".join(parts) + "."
