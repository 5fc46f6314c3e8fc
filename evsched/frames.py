"""Shared behaviour of results that carry tidy ``voltages`` and ``branches`` frames."""
from __future__ import annotations

import pandas as pd


class FlowFrames:
    """Mixin for results with ``voltages`` (hour, bus, v_pu), ``branches`` (…, loss_kw), ``dt_h``."""

    voltages: pd.DataFrame
    branches: pd.DataFrame
    dt_h: float

    @property
    def loss_kwh(self) -> float:
        """Total active loss over branches and steps [kWh] = Σ loss_kw · Δt."""
        return float(self.branches["loss_kw"].sum() * self.dt_h)

    def loss_per_hour_kw(self) -> pd.Series:
        """Active loss per step, summed over branches [kW]."""
        return self.branches.groupby("hour")["loss_kw"].sum()

    def v_matrix(self) -> pd.DataFrame:
        """Voltages as a (bus × hour) frame [p.u.]."""
        return self.voltages.pivot(index="bus", columns="hour", values="v_pu")
