"""Parameters of notebook 06 (uncertainty): one validation for the notebook and the runner.

:func:`check_params` validates every parameter the notebook declares besides the case's own
(which :func:`evsched.case.load_case` checks) and returns them normalised, with the
:class:`~evsched.uncertainty.deviations.DeviationModel` built; each error names the parameter,
its value and the allowed range. :data:`DEFAULTS` are the notebook's defaults.
"""
from __future__ import annotations

from evsched.errors import InputError
from evsched.params import check_range
from evsched.schema import Uncertainty, validate_topic
from evsched.uncertainty.deviations import DeviationModel

DEFAULTS = {k: f.default for k, f in Uncertainty.model_fields.items()}
"""Defaults of notebook 06's own parameters: the ``uncertainty`` topic of :mod:`evsched.schema`
(the notebook's ``parameters`` cell is generated from it)."""

SOURCE = "notebook parameter"


def check_params(source: str = SOURCE, **params) -> dict:
    """Validate notebook 06's own parameters (unknown names are an error); missing ones take
    :data:`DEFAULTS`. Returns the values plus ``model`` (the DeviationModel at
    ``no_show_prob``)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise InputError(f"{source}s {unknown}: unknown; known: {sorted(DEFAULTS)}")
    p = dict(validate_topic("uncertainty", params, source=source))  # ranges: evsched.schema
    model = DeviationModel(no_show_prob=p["no_show_prob"], arrival_delay_pmf=p["arrival_delay_pmf"],
                           departure_shift_pmf=p["departure_shift_pmf"],
                           energy_request_sd=p["energy_request_sd"], forecast_error=p["forecast_error"],
                           forecast_error_scale=p["forecast_error_scale"], seed=p["uncertainty_seed"],
                           source=source)
    out = {"model": model, "uncertainty_seed": model.seed}
    for k in ("n_samples", "n_samples_sweep", "reactive_power", "robust_level", "robust_scenarios",
              "n_workers"):
        out[k] = p[k]
    # each swept rate in [0, 0.9] (the schema bounds the list's length only)
    out["no_show_sweep"] = sorted({check_range("no_show_sweep", v, 0.0, 0.9, source=source)
                                   for v in p["no_show_sweep"]})
    for k in ("no_show_prob", "arrival_delay_pmf", "departure_shift_pmf", "energy_request_sd",
              "forecast_error", "forecast_error_scale"):
        out[k] = getattr(model, k)
    return out
