"""Validation of notebook / YAML parameters: clear errors naming the parameter, value and range."""
from __future__ import annotations

from evsched.errors import InputError


def check_range(name: str, value, lo: float, hi: float, unit: str = "",
                source: str = "notebook parameter") -> float:
    """Return ``float(value)`` if ``lo ≤ value ≤ hi``, else raise :class:`InputError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source} '{name}' = {value!r}: must be a number in [{lo}, {hi}] {unit}".rstrip()) from None
    if not (lo <= v <= hi):
        raise InputError(f"{source} '{name}' = {value!r}: must be in [{lo}, {hi}] {unit}".rstrip())
    return v


def check_voltage_band(v_slack_pu, v_min_pu, v_max_pu) -> tuple[float, float, float]:
    """Slack voltage in [0.9, 1.1] p.u., limits in [0.8, 1.2] p.u. with v_min < v_max."""
    vs = check_range("v_slack_pu", v_slack_pu, 0.9, 1.1, "p.u.")
    lo = check_range("v_min_pu", v_min_pu, 0.8, 1.2, "p.u.")
    hi = check_range("v_max_pu", v_max_pu, 0.8, 1.2, "p.u.")
    if lo >= hi:
        raise InputError(f"notebook parameters 'v_min_pu' = {lo} and 'v_max_pu' = {hi}: need v_min_pu < v_max_pu")
    return vs, lo, hi
