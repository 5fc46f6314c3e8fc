"""Parameters of notebook 06 (uncertainty): one validation for the notebook and the runner.

:func:`check_params` validates every parameter the notebook declares besides the case's own
(which :func:`evsched.case.load_case` checks) and returns them normalised, with the
:class:`~evsched.uncertainty.deviations.DeviationModel` built; each error names the parameter,
its value and the allowed range. :data:`DEFAULTS` are the notebook's defaults.
"""
from __future__ import annotations

from evsched.errors import InputError
from evsched.params import check_range, plain
from evsched.uncertainty.deviations import DeviationModel

DEFAULTS = {
    "no_show_prob": 0.1,
    "arrival_delay_pmf": [0.6, 0.25, 0.1, 0.05],
    "departure_shift_pmf": [0.05, 0.1, 0.7, 0.1, 0.05],
    "energy_request_sd": 0.15,
    "forecast_error": "backtest",
    "forecast_error_scale": 1.0,
    "uncertainty_seed": 20240601,
    "n_samples": 20,
    "n_samples_sweep": 6,
    "no_show_sweep": [0.0, 0.1, 0.2, 0.3],
    "reactive_power": True,
    "robust_level": 1.0,
    "robust_scenarios": 60,
    "n_workers": 2,
}
"""Defaults of notebook 06's own parameters (the notebook's ``parameters`` cell has the same)."""

SOURCE = "notebook parameter"


def _integer(name, v, lo, hi, source):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InputError(f"{source} '{name}' = {plain(v)!r}: must be an integer in {lo}..{hi}")
    return int(v)


def check_params(source: str = SOURCE, **params) -> dict:
    """Validate notebook 06's own parameters (unknown names are an error); missing ones take
    :data:`DEFAULTS`. Returns the values plus ``model`` (the DeviationModel at
    ``no_show_prob``)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise InputError(f"{source}s {unknown}: unknown; known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    _integer("uncertainty_seed", p["uncertainty_seed"], 0, 2 ** 32 - 1, source)
    model = DeviationModel(no_show_prob=p["no_show_prob"], arrival_delay_pmf=p["arrival_delay_pmf"],
                           departure_shift_pmf=p["departure_shift_pmf"],
                           energy_request_sd=p["energy_request_sd"], forecast_error=p["forecast_error"],
                           forecast_error_scale=p["forecast_error_scale"], seed=p["uncertainty_seed"],
                           source=source)
    out = {"model": model, "uncertainty_seed": model.seed}
    out["n_samples"] = _integer("n_samples", p["n_samples"], 1, 10_000, source)
    out["n_samples_sweep"] = _integer("n_samples_sweep", p["n_samples_sweep"], 1, 10_000, source)
    sweep = p["no_show_sweep"]
    if isinstance(sweep, (str, bytes)) or not hasattr(sweep, "__len__") or not 1 <= len(sweep) <= 10:
        raise InputError(f"{source} 'no_show_sweep' = {plain(sweep)!r}: must be a list of 1..10 no-show "
                         "rates, each in [0, 0.9]")
    out["no_show_sweep"] = sorted({check_range("no_show_sweep", v, 0.0, 0.9, source=source) for v in sweep})
    if not isinstance(p["reactive_power"], bool):
        raise InputError(f"{source} 'reactive_power' = {plain(p['reactive_power'])!r}: must be true or false")
    out["reactive_power"] = p["reactive_power"]
    out["robust_level"] = check_range("robust_level", p["robust_level"], 0.5, 1.0, source=source)
    out["robust_scenarios"] = _integer("robust_scenarios", p["robust_scenarios"], 1, 10_000, source)
    out["n_workers"] = _integer("n_workers", p["n_workers"], 1, 64, source)
    for k in ("no_show_prob", "arrival_delay_pmf", "departure_shift_pmf", "energy_request_sd",
              "forecast_error", "forecast_error_scale"):
        out[k] = getattr(model, k)
    return out
