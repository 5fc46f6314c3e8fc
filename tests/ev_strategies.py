"""Hypothesis strategies and helpers shared by the EV reservation tests (not a test module)."""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
from hypothesis import strategies as st

from evsched.reservations import COLUMNS

STATIONS = (14, 22, 30)

# fixed placeholder TOU table for tests: valley 0-7 & 23, peak 9-11 & 17-21, flat otherwise
PLACEHOLDER_TOU = pd.DataFrame({
    "hour": range(24),
    "period": ["valley" if (h <= 7 or h == 23) else "peak" if (9 <= h <= 11 or 17 <= h <= 21)
               else "flat" for h in range(24)],
})
PLACEHOLDER_TOU["price_per_kwh"] = PLACEHOLDER_TOU["period"].map(
    {"valley": 0.26, "flat": 0.65, "peak": 1.20})


def frame(*rows) -> pd.DataFrame:
    """Reservation rows (dicts) as a frame with the schema's column order."""
    return pd.DataFrame(list(rows))[COLUMNS]


def good_row(**changes) -> dict:
    """A valid reservation (overnight home EV); ``changes`` override fields."""
    row = dict(ev_id="EV001", bus=18, station=14, arrival_hour=18.0, departure_hour=7.0,
               departure_day=1, mode="both", battery_kwh=50.0, soc_arrival=0.5,
               soc_departure_min=0.8, soc_min=0.3, soc_max=0.9, charger_kw=7.0,
               charger_kva=7.7, efficiency=0.95)
    row.update(changes)
    return row


@st.composite
def reservation_rows(draw, ev_id: str, stations=STATIONS) -> dict:
    """One *valid* reservation with random, possibly fractional (quarter-hour) times."""
    a = draw(st.integers(0, 95)) / 4
    stay = draw(st.integers(1, 95)) / 4  # (0, 24) h
    e = a + stay
    mode = draw(st.sampled_from(["charge", "both", "discharge"]))
    B = draw(st.sampled_from([20.0, 50.0, 75.0]))
    P = draw(st.sampled_from([3.3, 7.0, 11.0]))
    eta = draw(st.sampled_from([0.9, 0.95, 1.0]))
    soc_a = draw(st.integers(5, 95)) / 100
    soc_min_pct = draw(st.integers(0, 60))  # whole percent: no float round-off in soc_min ≤ soc_max
    soc_min = soc_min_pct / 100
    soc_max = draw(st.integers(max(soc_min_pct, 40), 100)) / 100
    cap = eta * P * stay / B  # SOC the charger can add
    hi = min(soc_max, soc_a + cap) if mode != "discharge" else min(soc_max, soc_a)
    lo = soc_min
    if hi < lo:  # no room: fall back to a charge-free target at the floor
        hi = lo
    soc_d = draw(st.floats(lo, hi)) if hi > lo else lo
    soc_d = float(np.floor(soc_d * 1000) / 1000)
    soc_d = max(soc_d, soc_min)
    if mode == "discharge" and soc_d > soc_a:
        mode = "both"
    if soc_d - soc_a > cap - 1e-9:  # still too much to charge: ask for no net energy
        soc_min = min(soc_min, soc_a)
        soc_d = soc_min
    return dict(ev_id=ev_id, bus=draw(st.integers(2, 33)), station=draw(st.sampled_from(stations)),
                arrival_hour=a, departure_hour=e % 24, departure_day=int(e >= 24), mode=mode,
                battery_kwh=B, soc_arrival=soc_a, soc_departure_min=soc_d, soc_min=soc_min,
                soc_max=soc_max, charger_kw=P, charger_kva=round(P * 1.1, 3), efficiency=eta)


@st.composite
def fleets(draw, min_size: int = 1, max_size: int = 8, stations=STATIONS) -> pd.DataFrame:
    n = draw(st.integers(min_size, max_size))
    rows = [draw(reservation_rows(f"EV{i:03d}", stations)) for i in range(n)]
    return pd.DataFrame(rows)[COLUMNS]


def random_feasible_schedules(sessions, rng: np.random.Generator):
    """Per-session schedules (S, T) that honour every individual constraint: an LP vertex
    for a random linear objective over the exact per-session feasible sets."""
    S, T = sessions.presence.shape
    pc, pdis = cp.Variable((S, T), nonneg=True), cp.Variable((S, T), nonneg=True)
    eta = sessions.eta[:, None]
    x = cp.cumsum(cp.multiply(eta, pc) - cp.multiply(1 / eta, pdis), axis=1)
    cons = [pc <= sessions.p_charge_max_kw, pdis <= sessions.p_discharge_max_kw,
            pc + pdis <= sessions.charger_kw[:, None] * sessions.presence,
            x >= sessions.soc_box_min_kwh[:, None], x <= sessions.soc_box_max_kwh[:, None],
            x[:, T - 1] >= sessions.target_min_kwh, x[:, T - 1] <= sessions.target_max_kwh]
    c1, c2 = rng.normal(size=(S, T)), rng.normal(size=(S, T))
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(c1, pc)) + cp.sum(cp.multiply(c2, pdis))), cons)
    prob.solve(solver="HIGHS")
    assert prob.status == cp.OPTIMAL, prob.status
    return np.maximum(pc.value, 0), np.maximum(pdis.value, 0)
