"""Reservation schema and validation: every bad-input case with its exact message, both modes,
and a property test that validation accepts exactly the rows that obey every rule."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evsched.errors import InputError
from evsched.reservations import COLUMNS, SCHEMA, validate_reservations

from ev_strategies import STATIONS, good_row

SRC = "bad.csv"

# (changes to the good row, field, value as written in the CSV, reason) — one per rule
BAD_CASES = [
    ({"soc_arrival": ""}, "soc_arrival", "", "missing value"),
    ({"battery_kwh": "NaN"}, "battery_kwh", "NaN", "missing value"),
    ({"battery_kwh": "fifty"}, "battery_kwh", "fifty", "not a number"),
    ({"bus": "3.5"}, "bus", "3.5", "must be a whole number"),
    ({"bus": "34"}, "bus", "34", "must be a bus id of the network (1..33)"),
    ({"station": "18"}, "station", "18", "must be one of the station buses [14, 22, 30]"),
    ({"arrival_hour": "24"}, "arrival_hour", "24", "must be a clock hour in [0, 24)"),
    ({"departure_hour": "-1"}, "departure_hour", "-1", "must be a clock hour in [0, 24)"),
    ({"departure_day": "2"}, "departure_day", "2",
     "must be 0 (same day) or 1 (next day, overnight stay)"),
    ({"departure_day": "0"}, "departure_hour", "7.0",
     "the stay departure_hour + 24*departure_day - arrival_hour = -11 h must be in (0, 24) h; "
     "set departure_day = 1 for a stay past midnight"),
    ({"departure_hour": "18"}, "departure_hour", "18",
     "the stay departure_hour + 24*departure_day - arrival_hour = 24 h must be in (0, 24) h; "
     "set departure_day = 1 for a stay past midnight"),
    ({"mode": "v2g"}, "mode", "v2g", "must be one of 'charge', 'discharge', 'both'"),
    ({"battery_kwh": "0"}, "battery_kwh", "0", "must be > 0"),
    ({"battery_kwh": "-50"}, "battery_kwh", "-50", "must be > 0"),
    ({"charger_kw": "0"}, "charger_kw", "0", "must be > 0"),
    ({"charger_kva": "6"}, "charger_kva", "6", "must be >= charger_kw (= 7 kW)"),
    ({"soc_arrival": "1.2"}, "soc_arrival", "1.2", "must be a state of charge in [0, 1]"),
    ({"soc_max": "-0.1"}, "soc_max", "-0.1", "must be a state of charge in [0, 1]"),
    ({"soc_min": "0.85"}, "soc_min", "0.85", "must be <= soc_departure_min (= 0.8)"),
    ({"soc_max": "0.7"}, "soc_max", "0.7", "must be >= soc_departure_min (= 0.8)"),
    ({"efficiency": "0"}, "efficiency", "0", "must be in (0, 1]"),
    ({"efficiency": "1.5"}, "efficiency", "1.5", "must be in (0, 1]"),
    ({"arrival_hour": "5", "departure_day": "0"}, "soc_departure_min", "0.8",
     "energy need (soc_departure_min - soc_arrival) x battery_kwh = 15 kWh exceeds what the "
     "charger delivers in the stay: efficiency x charger_kw x stay = 0.95 x 7 kW x 2 h = 13.3 kWh"),
    ({"mode": "discharge"}, "mode", "discharge",
     "a discharge-only reservation cannot raise the SOC: needs soc_departure_min (= 0.8) <= "
     "soc_arrival (= 0.5)"),
]
IDS = [f"{c[1]}={c[2]!r}" for c in BAD_CASES]


def expected(field, value, reason, row=1, ev_id="EV001", source=SRC) -> str:
    return f"{source}, row {row} (ev_id {ev_id!r}), field '{field}' = {value!r}: {reason}"


def write(tmp_path, rows, name=SRC):
    path = tmp_path / name
    pd.DataFrame(rows)[COLUMNS].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("changes, field, value, reason", BAD_CASES, ids=IDS)
def test_fail_first_exact_message(tmp_path, ieee33, changes, field, value, reason):
    path = write(tmp_path, [good_row(**changes)])
    with pytest.raises(InputError) as exc:
        validate_reservations(path, ieee33, STATIONS, source=SRC)
    assert str(exc.value) == expected(field, value, reason)


@pytest.mark.parametrize("changes, field, value, reason", BAD_CASES, ids=IDS)
def test_skip_bad_reports_and_keeps_good_rows(tmp_path, ieee33, changes, field, value, reason):
    rows = [good_row(ev_id="EV000"), good_row(**changes), good_row(ev_id="EV002")]
    path = write(tmp_path, rows)
    rep = validate_reservations(path, ieee33, STATIONS, on_error="skip", source=SRC)
    assert rep.n_rows == 3 and rep.n_accepted == 2 and rep.n_rejected == 1
    assert list(rep.accepted["ev_id"]) == ["EV000", "EV002"]
    assert rep.rejected[["row", "ev_id", "field", "value", "reason"]].iloc[0].tolist() == \
        [2, "EV001", field, value, reason]
    assert rep.messages()[0] == expected(field, value, reason, row=2)
    assert rep.summary() == f"{SRC}: 2 accepted, 1 rejected (of 3 rows)"


def test_duplicate_ev_id(tmp_path, ieee33):
    path = write(tmp_path, [good_row(), good_row(bus=5)])
    msg = expected("ev_id", "EV001", "duplicate ev_id (first used in row 1)", row=2)
    with pytest.raises(InputError) as exc:
        validate_reservations(path, ieee33, STATIONS, source=SRC)
    assert str(exc.value) == msg
    rep = validate_reservations(path, ieee33, STATIONS, on_error="skip", source=SRC)
    assert rep.n_accepted == 1 and rep.messages() == [msg]


def test_every_broken_rule_of_a_row_is_listed(tmp_path, ieee33):
    path = write(tmp_path, [good_row(soc_arrival=1.5, mode="x", charger_kw=-1)])
    rep = validate_reservations(path, ieee33, STATIONS, on_error="skip", source=SRC)
    assert rep.n_rejected == 1
    assert set(rep.rejected["field"]) == {"soc_arrival", "mode", "charger_kw"}


def test_fail_first_is_the_first_row_in_file_order(tmp_path, ieee33):
    path = write(tmp_path, [good_row(ev_id="A"), good_row(ev_id="B", efficiency=2),
                            good_row(ev_id="C", bus=99)])
    with pytest.raises(InputError, match=r"row 2 \(ev_id 'B'\), field 'efficiency'"):
        validate_reservations(path, ieee33, STATIONS, source=SRC)


def test_header_errors(tmp_path, ieee33):
    df = pd.DataFrame([good_row()])
    df.drop(columns="efficiency").to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(InputError) as exc:
        validate_reservations(tmp_path / "a.csv", ieee33, STATIONS, source="a.csv")
    assert str(exc.value) == ("a.csv, header, field 'efficiency' = None: required column missing "
                              f"(missing: ['efficiency']); the schema is {COLUMNS}")
    df.assign(colour="red").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InputError) as exc:
        validate_reservations(tmp_path / "b.csv", ieee33, STATIONS, on_error="skip", source="b.csv")
    assert str(exc.value) == ("b.csv, header, field 'colour' = 'colour': unknown column "
                              f"(unknown: ['colour']); the schema is {COLUMNS}")


def test_nothing_clipped_accepted_values_unchanged(tmp_path, ieee33):
    rows = [good_row(ev_id="A", arrival_hour=18.25, departure_hour=7.5),
            good_row(ev_id="B", arrival_hour=8, departure_hour=17, departure_day=0,
                     mode="discharge", soc_departure_min=0.45, soc_min=0.2)]
    rep = validate_reservations(write(tmp_path, rows), ieee33, STATIONS)
    assert rep.ok and rep.n_accepted == 2
    got = rep.accepted
    assert got.loc[0, "arrival_hour"] == 18.25 and got.loc[0, "departure_hour"] == 7.5
    assert got.loc[1, "soc_departure_min"] == 0.45 and got.loc[1, "mode"] == "discharge"
    assert got["departure_day"].dtype.kind == "i" and got["bus"].dtype.kind == "i"


def test_verbose_prints_counts(tmp_path, ieee33, capsys):
    path = write(tmp_path, [good_row(), good_row(ev_id="X", soc_min=0.9)])
    validate_reservations(path, ieee33, STATIONS, on_error="skip", source=SRC, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert out == [expected("soc_min", "0.9", "must be <= soc_departure_min (= 0.8)", 2, "X"),
                   f"{SRC}: 1 accepted, 1 rejected (of 2 rows)"]


def test_schema_documented_in_data_readme():
    from evsched.paths import DATA
    text = (DATA / "reservations" / "README.md").read_text()
    for c in SCHEMA:
        assert f"| `{c.name}` |" in text


# --- property: accepted ⇔ every rule holds (reference implementation, one row at a time) -----
def reference_ok(row: dict) -> bool:
    """Plain re-statement of the rules for one row (written independently of the library)."""
    def num(v):
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) else None

    v = {c: num(row[c]) for c in COLUMNS if c not in ("ev_id", "mode")}
    if any(x is None for x in v.values()) or str(row["ev_id"]).strip() == "":
        return False
    if row["mode"] not in ("charge", "discharge", "both"):
        return False
    if any(v[c] != round(v[c]) for c in ("bus", "station", "departure_day")):
        return False
    if not (1 <= v["bus"] <= 33) or v["station"] not in STATIONS:
        return False
    if not (0 <= v["arrival_hour"] < 24 and 0 <= v["departure_hour"] < 24):
        return False
    if v["departure_day"] not in (0, 1):
        return False
    if not all(0 <= v[c] <= 1 for c in ("soc_arrival", "soc_departure_min", "soc_min", "soc_max")):
        return False
    # apparent-power rating: at least the active rating, at most twice it (inverter oversizing)
    if not (v["battery_kwh"] > 0 and v["charger_kw"] > 0 and v["charger_kw"] <= v["charger_kva"] <= 2 * v["charger_kw"]):
        return False
    if not (0 < v["efficiency"] <= 1):
        return False
    if not (v["soc_min"] <= v["soc_departure_min"] <= v["soc_max"]):
        return False
    stay = v["departure_hour"] + 24 * v["departure_day"] - v["arrival_hour"]
    if not (0 < stay < 24):
        return False
    need = (v["soc_departure_min"] - v["soc_arrival"]) * v["battery_kwh"]
    if row["mode"] == "discharge" and need > 0:
        return False
    return need <= v["efficiency"] * v["charger_kw"] * stay + 1e-6


def _value(good):
    """A field value: usually plausible, sometimes out of range, NaN, text or empty."""
    return st.one_of(st.just(good), st.just(good), st.just(good),
                     st.floats(-2, 40, allow_nan=False).map(lambda x: round(x, 2)),
                     st.sampled_from([float("nan"), "", "abc", -1, 0, 1, 0.5, 24, 33, 14, 2]))


@st.composite
def messy_rows(draw, i):
    g = good_row(ev_id=f"EV{i}")
    row = {c: draw(_value(g[c])) for c in COLUMNS if c not in ("ev_id", "mode")}
    row["ev_id"] = draw(st.sampled_from([f"EV{i}", f"EV{i}", "", "DUP"]))
    row["mode"] = draw(st.sampled_from(["charge", "both", "discharge", "V2G", ""]))
    return row


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=6).flatmap(
    lambda ids: st.tuples(*[messy_rows(i) for i in range(len(ids))])))
@example(rows=({**good_row(ev_id="EV0"), "charger_kw": 7.0, "charger_kva": 15.0},))  # kVA > 2 x kW: refused
def test_validation_accepts_exactly_the_rows_obeying_every_rule(ieee33, rows):
    df = pd.DataFrame(list(rows))[COLUMNS].astype(str)
    rep = validate_reservations(df, ieee33, STATIONS, on_error="skip")
    seen, expect = set(), []
    for r in rows:  # duplicates: the first occurrence of an id may be accepted, later ones never
        ok = reference_ok(r) and str(r["ev_id"]) not in seen
        if str(r["ev_id"]).strip():
            seen.add(str(r["ev_id"]))
        expect.append(ok)
    accepted_ids = list(rep.accepted["ev_id"])
    assert accepted_ids == [str(r["ev_id"]) for r, ok in zip(rows, expect) if ok]
    assert rep.n_accepted + rep.n_rejected == len(rows)
