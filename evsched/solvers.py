"""Conic solver choice: MOSEK when a licence is usable, otherwise Clarabel.

MOSEK signals a missing licence with its own exception (``mosek.Error``), which cvxpy does
not always turn into ``SolverError``; the probe therefore catches every exception of a tiny
solve. The choice is made once per process and can be overridden by the ``solver`` argument
of :meth:`evsched.model.OPFModel.solve` or the ``EVSCHED_SOLVER`` environment variable.
"""
from __future__ import annotations

import os
from functools import lru_cache

import cvxpy as cp

DEFAULT_FALLBACK = "CLARABEL"
ANNOUNCED_ENV = "EVSCHED_CLARABEL_ANNOUNCED"
"""Set once the Clarabel fallback line was printed, so that child processes do not repeat it."""


@lru_cache(maxsize=1)
def mosek_usable() -> bool:
    """True if MOSEK is installed *and* a tiny SOCP solves (i.e. a licence was found)."""
    if "MOSEK" not in cp.installed_solvers():
        return False
    x = cp.Variable(2)
    prob = cp.Problem(cp.Minimize(x[0]), [cp.SOC(x[0], x[1:]), x[1] == 1])
    try:
        prob.solve(solver="MOSEK")
    except Exception:  # mosek.Error (licence), cp.SolverError, ...
        return False
    return prob.status == cp.OPTIMAL


@lru_cache(maxsize=None)
def select_solver(preferred: str | None = None) -> str:
    """Name of the solver to use.

    Order: ``preferred`` argument, then ``$EVSCHED_SOLVER``, then MOSEK if its licence works,
    else Clarabel (one line on stdout says so, once per process tree: informational, so that
    JupyterLab does not show it as an error; worker processes started later, e.g. a dask
    pool's, inherit :data:`ANNOUNCED_ENV` and stay silent).
    """
    choice = preferred or os.environ.get("EVSCHED_SOLVER")
    if choice:
        choice = choice.upper()
        if choice not in cp.installed_solvers():
            raise ValueError(f"solver {choice!r} is not installed; installed: {cp.installed_solvers()}")
        if choice == "MOSEK" and not mosek_usable():
            raise ValueError("solver 'MOSEK' was requested but no usable MOSEK licence was found "
                             "(set MOSEKLM_LICENSE_FILE or put mosek.lic in ~/mosek/)")
        return choice
    if mosek_usable():
        return "MOSEK"
    if not os.environ.get(ANNOUNCED_ENV):
        print("evsched: no MOSEK licence found, solving with Clarabel", flush=True)
        os.environ[ANNOUNCED_ENV] = "1"
    return DEFAULT_FALLBACK
