r"""Beyond the paper: no-shows, late arrivals and forecast error, with real-time re-dispatch.

The study's day-ahead schedule (S3, certified) assumes that tomorrow happens as forecast and
as reserved. This package asks what happens when it does not, and what re-dispatching buys:

* :mod:`evsched.uncertainty.deviations` — the seeded **deviation model**: no-shows, arrival
  delays, departure shifts, energy-request changes (documented distributions, one knob each)
  and the **forecast error** of load, PV and wind taken from the real SimBench data (the target
  day's actual values, or the residuals of the day-ahead backtest);
* :mod:`evsched.uncertainty.acflow` — a vectorised radial AC power flow (Z-bus / BIBC-BCBV
  fixed point), checked against pandapower (:func:`evsched.powerflow.run_ac_powerflow`) to
  1e-8 p.u.; it evaluates every dispatched day of the Monte Carlo;
* :mod:`evsched.uncertainty.execution` — what each EV physically does with a schedule (late
  arrival, early departure, SOC limits), the reservation check for changed requests and the
  metrics of one executed day;
* :mod:`evsched.uncertainty.policies` — the four policies ``day_ahead``, ``mpc``, ``robust``,
  ``hindsight``;
* :mod:`evsched.uncertainty.montecarlo` — N samples × policies → ``samples.csv`` and
  ``summary.csv``;
* :mod:`evsched.uncertainty.bench` — timings (``make bench``), kept out of every table.

Notebook ``06_uncertainty`` presents the model, the policies' maths and the results.
"""
from evsched.uncertainty.deviations import (
    DeviationModel,
    ForecastErrors,
    Sample,
    draw_samples,
)

__all__ = ["DeviationModel", "ForecastErrors", "Sample", "draw_samples"]
