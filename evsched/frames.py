"""Shared behaviour of results that carry tidy ``voltages`` and ``branches`` frames."""
from __future__ import annotations

import numpy as np
import pandas as pd

from evsched import metrics


def tidy(matrix: np.ndarray, hours, index_cols: dict, value_name: str) -> pd.DataFrame:
    """(element × hour) matrix → long frame ``hour, <index cols>, <value_name>``, hour-major.

    ``index_cols`` maps column names to per-element values (length n) or a scalar.
    """
    n, T = matrix.shape
    out = {"hour": np.repeat(hours, n)}
    for k, v in index_cols.items():
        out[k] = np.tile(np.asarray(v), T) if np.ndim(v) else v
    out[value_name] = matrix.T.ravel()
    return pd.DataFrame(out)


class FlowFrames:
    """Mixin for results with ``voltages`` (hour, bus, v_pu), ``branches`` (…, loss_kw), ``dt_h``."""

    voltages: pd.DataFrame
    branches: pd.DataFrame
    dt_h: float

    @property
    def loss_kwh(self) -> float:
        """Total active loss over branches and steps [kWh] = Σ loss_kw · Δt."""
        return metrics.loss_kwh(self.branches, self.dt_h)

    def loss_per_hour_kw(self) -> pd.Series:
        """Active loss per step, summed over branches [kW]."""
        return metrics.loss_per_hour(self.branches)

    def v_matrix(self) -> pd.DataFrame:
        """Voltages as a (bus × hour) frame [p.u.]."""
        return self.voltages.pivot(index="bus", columns="hour", values="v_pu")
