"""Helpers for parameter messages: clear errors naming the parameter, value and range.

Every parameter's range and rules are defined once, in :mod:`evsched.schema`;
:func:`check_voltage_band` validates through it. Values in messages are printed as plain Python numbers (``0.0``, never ``np.float64(0.0)``).
"""
from __future__ import annotations

from contextlib import contextmanager

from evsched.errors import InputError


def plain(value):
    """``value`` with numpy scalars/arrays turned into Python numbers/lists (for messages)."""
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        try:
            return value.tolist()
        except (TypeError, ValueError):
            return value
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def check_range(name: str, value, lo: float, hi: float, unit: str = "",
                source: str = "notebook parameter") -> float:
    """Return ``float(value)`` if ``lo ≤ value ≤ hi``, else raise :class:`InputError`."""
    shown = plain(value)
    if isinstance(value, bool):
        raise InputError(f"{source} '{name}' = {shown!r}: must be a number in [{lo}, {hi}] {unit}".rstrip())
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source} '{name}' = {shown!r}: must be a number in [{lo}, {hi}] {unit}".rstrip()) from None
    if not (lo <= v <= hi):
        raise InputError(f"{source} '{name}' = {shown!r}: must be in [{lo}, {hi}] {unit}".rstrip())
    return v


def check_voltage_band(v_slack_pu, v_min_pu, v_max_pu) -> tuple[float, float, float]:
    """Slack voltage and limits in the ranges of :class:`evsched.schema.Limits` (with
    ``v_min_pu < v_max_pu``), as floats; :class:`InputError` names the parameter otherwise."""
    from evsched.schema import validate_topic

    lim = validate_topic("limits", {"v_slack_pu": v_slack_pu, "v_min_pu": v_min_pu, "v_max_pu": v_max_pu})
    return lim.v_slack_pu, lim.v_min_pu, lim.v_max_pu


@contextmanager
def rewrite_source(mapping: dict[str, str]):
    """Re-raise an :class:`InputError` whose message starts with a key of ``mapping`` with that
    prefix replaced (e.g. ``"notebook parameters"`` → the parameter file's name)."""
    try:
        yield
    except InputError as exc:
        msg = str(exc)
        for old, new in mapping.items():
            if old != new and msg.startswith(old):
                raise type(exc)(new + msg[len(old):]) from None
        raise
