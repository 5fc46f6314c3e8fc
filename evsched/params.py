"""Validation of notebook / YAML parameters: clear errors naming the parameter, value and range.

Values in messages are printed as plain Python numbers (``0.0``, never ``np.float64(0.0)``).
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


def case_bounds(name: str) -> tuple[float, float]:
    """The closed range ``(lo, hi)`` of a numeric :class:`evsched.case.Case` field (one home)."""
    from evsched.case import Case
    b = _bounds(Case.model_fields[name])
    return b["ge"], b["le"]


def _bounds(info) -> dict:
    """``{'ge'|'gt'|'le'|'lt': bound}`` of a pydantic field (annotated_types metadata)."""
    return {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt")
            if getattr(m, k, None) is not None}


def check_voltage_band(v_slack_pu, v_min_pu, v_max_pu) -> tuple[float, float, float]:
    """Slack voltage and limits in the ranges of :class:`evsched.case.Case` (slack 0.9..1.1,
    v_min 0.8..1.0, v_max 1.0..1.2 p.u.) with v_min < v_max."""
    vs = check_range("v_slack_pu", v_slack_pu, *case_bounds("v_slack_pu"), "p.u.")
    lo = check_range("v_min_pu", v_min_pu, *case_bounds("v_min_pu"), "p.u.")
    hi = check_range("v_max_pu", v_max_pu, *case_bounds("v_max_pu"), "p.u.")
    if lo >= hi:
        raise InputError(f"notebook parameters 'v_min_pu' = {lo} and 'v_max_pu' = {hi}: need v_min_pu < v_max_pu")
    return vs, lo, hi


def field_rule(model, name: str, error: dict) -> str:
    """The rule a pydantic ``error`` on field ``name`` of ``model`` broke, as
    ``must be in [lo, hi] <unit>`` for a bounded numeric field (unit: the ``[...]`` of the
    field's description), otherwise pydantic's own message."""
    import re

    info = model.model_fields.get(name)
    msg = error.get("msg", "")
    if info is None:
        return msg
    b = _bounds(info)
    if not b:
        return msg
    lo = b.get("ge", b.get("gt", "-inf"))
    hi = b.get("le", b.get("lt", "inf"))
    unit = re.search(r"\[([^\]]+)\]", info.description or "")
    rng = (f"{'(' if 'gt' in b else '['}{plain(lo)}, {plain(hi)}{')' if 'lt' in b else ']'}"
           f"{' ' + unit.group(1) if unit else ''}")
    kind = error.get("type", "")
    if kind.endswith(("_type", "_parsing")) or kind in ("finite_number",):
        return f"must be a number in {rng}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be in {rng}"
    return f"{msg} (allowed: {rng})"


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
