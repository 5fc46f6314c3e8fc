r"""Documented interpretations of the paper's scenarios and metrics, for calibration sweeps.

The paper (Cao et al., *Zhejiang Electric Power* 2024) publishes five percent changes but not
the exact semantics behind them. This module makes the plausible readings explicit, **without
changing** :mod:`evsched.scenarios` or the default case: it composes that module's builders
(:func:`~evsched.scenarios.renewable_groups`, :func:`~evsched.scenarios.station_group`,
:func:`~evsched.scenarios.opf_model`, :func:`~evsched.scenarios._from_opf`).

Scenario variants of S2 (what "S2: EV active power only" may mean for the *other* devices)
==========================  =======================================================================
name                        reactive power in S2
==========================  =======================================================================
``S2``                      none anywhere (evsched's reading; :func:`evsched.scenarios.build_s2`)
``S2_pf0.95``, ``S2_pf0.90`` PV/WT at a fixed power factor (any ``S2_pf<pf>``, 0.8 ≤ pf ≤ 1):
                            each supplies ``q = −min(a·tan φ, sqrt(S² − a²))`` (load convention)
                            with ``a`` its availability and ``S`` its inverter rating; the stations
                            exchange no reactive power
``S2_renq``                 PV/WT reactive power optimised within their inverter circle (as in S3),
                            while the EV stations still control their active power only
==========================  =======================================================================

S3 is unchanged (everything optimised). Every variant is certified like S2/S3 (relaxation gap
and AC power flow of the dispatch); ``on_inexact="mark"`` keeps an inexact result with
``exact = False``.

Voltage deviation: evsched's Γ is :math:`\Delta t\sum_t\sum_i |V_{i,t}-1|` [p.u.·h]
(:func:`evsched.metrics.voltage_deviation`); the squared reading
:math:`\Delta t\sum_t\sum_i (V_{i,t}-1)^2` [p.u.²·h] is :func:`voltage_deviation_sq`. The two are
only compared through percent changes.

Load power factor: :func:`with_load_power_factor` rescales every bus's reactive demand so that
the feeder's daily :math:`\sum Q / \sum P` equals ``tan(acos(pf))`` (the history's class power
factors give about 0.85 on the default day).

The paper's five figures for one set of scenario rows are :func:`paper_ratios`.
"""
from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd

from evsched import metrics, scenarios
from evsched.case import CaseData
from evsched.errors import InexactRelaxationError, InputError
from evsched.model import DeviceGroup
from evsched.report import PAPER_PCT

S2_VARIANTS = ("S2_pf0.95", "S2_pf0.90", "S2_renq")
"""The S2 variants the calibration sweeps use by default (any ``S2_pf<pf>`` is accepted)."""
VDEV_DEFINITIONS = {"abs": "voltage_deviation_pu", "sq": "voltage_deviation_sq_pu2"}
"""Voltage-deviation definition → column of a sweep's ``cases.csv``."""
FIGURES = list(PAPER_PCT)
"""The paper's five figures as ``(metric, comparison)`` keys of :data:`evsched.report.PAPER_PCT`."""
_PF = re.compile(r"S2_pf(\d(?:\.\d+)?)\Z")


def scenario_names() -> str:
    return "S0, S1, S2, S3, " + ", ".join(S2_VARIANTS) + " or S2_pf<pf> (0.8 ≤ pf ≤ 1)"


def check_scenario(name) -> str:
    """``name`` if it is S0..S3 or a known S2 variant; else :class:`InputError`."""
    if name in scenarios.SCENARIOS or name == "S2_renq":
        return name
    m = _PF.match(str(name))
    if m and 0.8 <= float(m.group(1)) <= 1.0:
        return name
    raise InputError(f"scenario {name!r}: must be one of {scenario_names()}")


def _renamed(res: scenarios.ScenarioResult, name: str, description: str,
             on_inexact: str) -> scenarios.ScenarioResult:
    res.name, res.description = name, description
    if not res.exact and on_inexact == "raise":
        raise InexactRelaxationError(res.verdict() + (". " + res.opf.inexactness_report()
                                                      if not res.opf.exact else ""))
    return res


def fixed_pf_renewables(cd: CaseData, pf: float) -> list[DeviceGroup]:
    r"""PV/WT groups of :func:`~evsched.scenarios.renewable_groups` (must-take or curtailable
    as the case says) with a fixed reactive set-point: each unit supplies
    ``q = −min(a·tan φ, sqrt(S² − a²))`` [kvar] (load convention, ``cos φ = pf``), ``a`` its
    availability, ``S`` its inverter rating; with curtailment the set-point follows the
    *available* power."""
    if not 0.8 <= pf <= 1.0:
        raise InputError(f"fixed_pf_renewables: pf = {pf!r} must be in 0.8..1.0")
    tan = math.tan(math.acos(pf))
    out = []
    for g in scenarios.renewable_groups(cd, reactive=False):
        a = -g.p_min_kw  # availability [kW] (p_min = −a for must-take and curtailable units)
        s = cd.case.inverter_kva_ratio * np.asarray(
            cd.case.pv_capacity_kw if g.kind == "pv" else cd.case.wt_capacity_kw, float)[:, None]
        q = -np.minimum(a * tan, np.sqrt(np.maximum(s ** 2 - a ** 2, 0.0)))
        out.append(dataclasses.replace(g, q_min_kvar=q, q_max_kvar=q))
    return out


def build_s2_variant(name: str, cd: CaseData, solver: str | None = None,
                     on_inexact: str = "raise") -> scenarios.ScenarioResult:
    """Solve one S2 variant (:data:`S2_VARIANTS`, ``S2_pf<pf>``) on ``cd``; plain ``S2`` is
    :func:`evsched.scenarios.build_s2`. Certified like S2; ``on_inexact="mark"`` keeps an
    inexact result (``exact = False``)."""
    check_scenario(name)
    if name == "S2":
        return scenarios.build_s2(cd, solver=solver, on_inexact=on_inexact)
    if name == "S2_renq":
        renewables = scenarios.renewable_groups(cd, reactive=True)
        what = "as S2, but PV/WT reactive power optimised within the inverter circle (EVs: P only)"
    else:
        pf = float(_PF.match(name).group(1))
        renewables = fixed_pf_renewables(cd, pf)
        what = f"as S2, but PV/WT supply reactive power at a fixed power factor {pf:g} (EVs: P only)"
    stations = scenarios.station_group(cd, reactive=False)
    model = scenarios.opf_model(cd, reactive=False).clone(devices=renewables + [stations])
    res = model.solve(solver=solver, on_inexact="mark")
    return _renamed(scenarios._from_opf("S2", cd, res, on_inexact="mark"), name, what, on_inexact)


def run(name: str, cd: CaseData, on_inexact: str = "mark") -> scenarios.ScenarioResult:
    """Run a scenario (S0..S3) or an S2 variant; S2/S3 and the variants with ``on_inexact``."""
    check_scenario(name)
    if name in ("S0", "S1"):
        return scenarios.run_scenario(name, cd)
    if name == "S3":
        return scenarios.build_s3(cd, on_inexact=on_inexact)
    return build_s2_variant(name, cd, on_inexact=on_inexact)


def voltage_deviation_sq(voltages: pd.DataFrame, dt_h: float = 1.0, v_ref_pu: float = 1.0) -> float:
    """Squared voltage deviation ``Δt · Σ_t Σ_i (V_i,t − v_ref)²`` [p.u.²·h] (all buses)."""
    return float(((voltages["v_pu"] - v_ref_pu) ** 2).sum() * dt_h)


def with_load_power_factor(cd: CaseData, pf: float | None) -> CaseData:
    """A copy of ``cd`` whose bus reactive demand is scaled by one factor so that the feeder's
    daily ``Σ q / Σ p`` is ``tan(acos(pf))`` (``None``: ``cd`` unchanged). Active load,
    renewables, TOU and fleet are unchanged."""
    if pf is None:
        return cd
    if not 0.7 <= pf <= 1.0:
        raise InputError(f"load power factor {pf!r}: must be in 0.7..1.0")
    p, q = float(cd.load_p_kw.sum()), float(cd.load_q_kvar.sum())
    if p <= 0 or q <= 0:
        raise InputError("with_load_power_factor: the forecast day has no positive load P and Q")
    factor = math.tan(math.acos(pf)) * p / q
    return dataclasses.replace(cd, load_q_kvar=cd.load_q_kvar * factor)


def load_power_factor(cd: CaseData) -> float:
    """The feeder's daily power factor ``cos(atan(Σ q / Σ p))`` of the forecast load."""
    return math.cos(math.atan(float(cd.load_q_kvar.sum()) / float(cd.load_p_kw.sum())))


def paper_ratios(rows: pd.DataFrame, s2: str = "S2", vdev: str = "abs") -> dict:
    """The paper's five figures (percent changes) from one case's rows (``scenario`` + the
    summary columns, e.g. ``cases.csv`` rows of one ``case_id``), with ``s2`` standing for the
    paper's S2 and ``vdev`` ('abs' or 'sq') the voltage-deviation definition.

    Returns ``{(metric, comparison): pct}`` keyed like :data:`evsched.report.PAPER_PCT`
    (NaN where a scenario is missing or not certified exact)."""
    col = VDEV_DEFINITIONS[vdev]
    s = rows.set_index("scenario")
    cols = {"peak_valley": "peak_valley_kw", "loss": "loss_kwh", "voltage_deviation": col}

    def value(scn, metric):
        if scn not in s.index or not _exact(s.at[scn, "exact"]):
            return float("nan")
        return float(s.at[scn, cols[metric]])

    out = {}
    for metric, comp in FIGURES:
        new, ref = comp.split(" vs ")
        new, ref = (s2 if new == "S2" else new), (s2 if ref == "S2" else ref)
        out[(metric, comp)] = metrics.pct_change(value(new, metric), value(ref, metric))
    return out


def _exact(v) -> bool:
    return v is True or (isinstance(v, (bool, np.bool_)) and bool(v)) or str(v) == "True"


FIGURE_LABELS = {("peak_valley", "S2 vs S1"): "peak-valley S2/S1", ("loss", "S2 vs S1"): "loss S2/S1",
                 ("voltage_deviation", "S2 vs S1"): "Γ S2/S1", ("loss", "S3 vs S2"): "loss S3/S2",
                 ("voltage_deviation", "S3 vs S2"): "Γ S3/S2"}
"""Short column names of the paper's five figures (percent changes)."""


def sweep_keys(cases: pd.DataFrame) -> list[str]:
    """The swept columns of a sweep's ``cases.csv`` (between ``case_id`` and ``scenario``)."""
    cols = list(cases.columns)
    return cols[cols.index("case_id") + 1:cols.index("scenario")]


def calibration_table(cases: pd.DataFrame, vdevs=("abs", "sq"), tol_points: float = 15.0) -> pd.DataFrame:
    """Every *documented case* of a calibration sweep: one row per case, reading of S2 (every
    S2 variant the sweep ran) and voltage-deviation definition, with the swept values, the five
    figures (:data:`FIGURE_LABELS` columns, percent), ``certified`` (S1, that S2 and S3 all
    exact), ``n_within`` (figures within ``tol_points`` percentage points of the paper's) and
    ``rms_points`` (RMS distance to the paper's five figures). Uncertified rows keep NaN figures."""
    keys = sweep_keys(cases)
    variants = [s for s in dict.fromkeys(cases.scenario) if str(s).startswith("S2")]
    rows = []
    for cid, g in cases.groupby("case_id", sort=False):
        meta = {"case_id": cid, **g.iloc[0][keys].to_dict()}
        ok = {s: _exact(e) for s, e in zip(g.scenario, g.exact)}
        for s2 in variants:
            for vdev in vdevs:
                r = paper_ratios(g, s2=s2, vdev=vdev)
                row = {**meta, "s2_reading": s2, "vdev": vdev,
                       "certified": all(ok.get(s, False) for s in ("S1", s2, "S3"))}
                row.update({FIGURE_LABELS[k]: v for k, v in r.items()})
                d = np.array([r[k] - PAPER_PCT[k] for k in FIGURES])
                row["n_within"] = int(np.sum(np.abs(d) <= tol_points))
                row["rms_points"] = float(np.sqrt(np.mean(d ** 2))) if np.isfinite(d).all() else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def comparison_with_paper(row: pd.Series) -> pd.DataFrame:
    """The comparison table of one documented case (a row of :func:`calibration_table`):
    ``metric, comparison, paper_pct, ours_pct, difference_points``."""
    out = [{"metric": m, "comparison": c, "paper_pct": PAPER_PCT[(m, c)],
            "ours_pct": float(row[FIGURE_LABELS[(m, c)]])} for m, c in FIGURES]
    df = pd.DataFrame(out)
    df["difference_points"] = df.ours_pct - df.paper_pct
    return df
