"""Hostile inputs: every malformed file, value or net is refused with a message naming the file,
the row (or id), the field, the value and the allowed range — never a traceback, never a numpy
repr, never silent acceptance or a silent change of the data.

Classes: reservation CSVs (and ``evsched validate``), the pandapower import, the profile reader,
and the scale of the fleet → validate → sessions pipeline."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import evsched
from evsched.cli import main
from evsched.errors import InputError, NetworkDataError
from evsched.fleet import FleetConfig, generate_fleet, write_fleet
from evsched.profiles import read_profiles
from evsched.reservations import (
    COLUMNS,
    MAX_BATTERY_KWH,
    MAX_CHARGER_KW,
    MAX_ID_LENGTH,
    MAX_KVA_RATIO,
    read_reservations,
    validate_reservations,
)
from evsched.sessions import build_sessions

from ev_strategies import STATIONS, good_row

HEADER = ",".join(COLUMNS)


def line(**changes) -> str:
    """One good reservation as a CSV line (``changes`` override fields)."""
    row = good_row(**changes)
    return ",".join(str(row[c]) for c in COLUMNS)


def write_text(tmp_path, text, name="r.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path, ieee33, *parts, on_error="raise", stations=STATIONS):
    with pytest.raises(InputError) as exc:
        validate_reservations(path, ieee33, stations, on_error=on_error)
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert "np." not in msg and "Traceback" not in msg
    return msg


def cli(capsys, *args):
    """Run ``evsched`` in process; return (status, stdout, stderr); never a traceback."""
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "np.float64" not in out.err + out.out
    return status, out.out, out.err


# =========================================================================== 1. reservation CSVs
def test_empty_file(tmp_path, ieee33, capsys):
    for text in ("", "\n\n  \n"):
        path = write_text(tmp_path, text)
        refused(path, ieee33, str(path), "empty file", "header line")
        status, _, err = cli(capsys, "validate", path)
        assert status == 1 and "empty file" in err


def test_header_only_file_is_an_error(tmp_path, ieee33, capsys):
    path = write_text(tmp_path, HEADER + "\n")
    refused(path, ieee33, str(path), "no reservations", "at least one")
    refused(path, ieee33, "no reservations", on_error="skip")
    status, _, err = cli(capsys, "validate", path, "--skip-bad")
    assert status == 1 and "no reservations" in err
    with pytest.raises(InputError, match="no reservations"):  # an empty frame too
        validate_reservations(pd.DataFrame(columns=COLUMNS), ieee33, STATIONS)


@pytest.mark.parametrize("extra, n_fields, rule", [
    (",7", 16, "too many fields"),
    (None, 14, "too few fields"),
])
def test_ragged_rows_are_rejected_by_row(tmp_path, ieee33, capsys, extra, n_fields, rule):
    bad = line(ev_id="BAD") + extra if extra else line(ev_id="BAD").rsplit(",", 1)[0]
    path = write_text(tmp_path, "\n".join([HEADER, line(ev_id="A"), bad, line(ev_id="C")]) + "\n")
    msg = refused(path, ieee33, str(path), "field 'number of fields'", "line 3", "must be 15", rule)
    assert msg.startswith(f"{path}, row 2 (ev_id 'BAD'), field 'number of fields' = {n_fields}: ")
    rep = validate_reservations(path, ieee33, STATIONS, on_error="skip")
    assert list(rep.accepted["ev_id"]) == ["A", "C"] and rep.n_rejected == 1
    assert rep.rejected.iloc[0][["row", "field", "value"]].tolist() == [2, "number of fields", n_fields]
    status, _, err = cli(capsys, "validate", path)
    assert status == 1 and rule in err


def test_trailing_comma_on_every_row_is_accepted_only_if_that_column_is_empty(tmp_path, ieee33):
    rows = [line(ev_id="A"), line(ev_id="B", bus=5)]
    reference = validate_reservations(write_text(tmp_path, "\n".join([HEADER] + rows) + "\n", "ok.csv"),
                                      ieee33, STATIONS).accepted
    # data rows end with a comma (header without): today KeyError: 0
    data_only = write_text(tmp_path, "\n".join([HEADER] + [r + "," for r in rows]) + "\n", "a.csv")
    pd.testing.assert_frame_equal(validate_reservations(data_only, ieee33, STATIONS).accepted, reference)
    # every line, header included, ends with a comma (an empty unnamed last column)
    every = write_text(tmp_path, "\n".join([HEADER + ","] + [r + ", " for r in rows]) + "\n", "b.csv")
    rep = validate_reservations(every, ieee33, STATIONS)
    pd.testing.assert_frame_equal(rep.accepted, reference)
    assert rep.notes == [f"{every}: note: the unnamed, empty last column (a trailing comma on "
                         "every line) was ignored"]                      # said, not silent
    # the unnamed column holds a value: refused, naming row, column and value
    filled = write_text(tmp_path, "\n".join([HEADER + ",", rows[0] + ",", rows[1] + ",x"]) + "\n", "c.csv")
    refused(filled, ieee33, "c.csv, row 2 (ev_id 'B'), field '(unnamed column 16)' = 'x'", "must be empty")
    # a named extra column is still an unknown column
    named = write_text(tmp_path, "\n".join([HEADER + ",note"] + [r + "," for r in rows]) + "\n", "d.csv")
    refused(named, ieee33, "d.csv", "header", "field 'note'", "unknown column")


@pytest.mark.parametrize("kind", ["utf16_bom", "utf16_no_bom", "gzip", "binary", "latin1"])
def test_binary_or_non_utf8_content(tmp_path, ieee33, capsys, kind):
    text = "\n".join([HEADER, line(ev_id="Zoë")]) + "\n"
    data = {"utf16_bom": text.encode("utf-16"), "utf16_no_bom": text.encode("utf-16-le"),
            "gzip": gzip.compress(text.encode()), "binary": bytes(range(256)) * 4,
            "latin1": text.encode("latin-1")}[kind]
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    expect = {"utf16_bom": "UTF-16", "utf16_no_bom": "NUL byte", "gzip": "gzip",
              "binary": "binary", "latin1": "not UTF-8"}[kind]
    refused(path, ieee33, str(path), expect, "UTF-8")
    status, _, err = cli(capsys, "validate", path)
    assert status == 1 and expect in err


def test_utf8_byte_order_mark_is_accepted(tmp_path, ieee33):
    path = tmp_path / "bom.csv"
    path.write_bytes(("\n".join([HEADER, line()]) + "\n").encode("utf-8-sig"))
    assert validate_reservations(path, ieee33, STATIONS).ok


def test_directory_instead_of_a_file(tmp_path, ieee33, capsys):
    refused(tmp_path, ieee33, str(tmp_path), "is a directory")
    status, _, err = cli(capsys, "validate", tmp_path)
    assert status == 1 and "is a directory" in err


def test_stray_quote_cannot_swallow_the_following_rows(tmp_path, ieee33):
    rows = [line(ev_id="A"), '"' + line(ev_id="B"), line(ev_id="C"), line(ev_id="D")]
    path = write_text(tmp_path, "\n".join([HEADER] + rows) + "\n")
    refused(path, ieee33, str(path), "line 3", "unmatched", on_error="skip")
    rows[1] = line(ev_id='"B"x')
    path = write_text(tmp_path, "\n".join([HEADER] + rows) + "\n")
    refused(path, ieee33, "line 3", "cannot be parsed as CSV", on_error="skip")


def test_duplicate_column_and_oversized_field(tmp_path, ieee33):
    path = write_text(tmp_path, "\n".join([HEADER + ",bus", line() + ",18"]) + "\n")
    refused(path, ieee33, "header", "field 'bus'", "duplicate column (columns 2 and 16)")
    path = write_text(tmp_path, "\n".join([HEADER, line(ev_id="x" * 200_000)]) + "\n")
    refused(path, ieee33, str(path), "line 2", "field larger than")


def test_report_into_a_missing_folder_or_onto_the_input(tmp_path, capsys):
    src = write_text(tmp_path, "\n".join([HEADER, line(), line(ev_id="B", bus=99)]) + "\n")
    missing = tmp_path / "no" / "such" / "dir" / "rejected.csv"
    status, out, err = cli(capsys, "validate", src, "--skip-bad", "--report", missing)
    assert status == 1 and out == ""
    assert f"--report {missing}: folder {missing.parent} does not exist" in err
    assert not missing.parent.exists()                          # nothing created, nothing validated
    status, _, err = cli(capsys, "validate", src, "--skip-bad", "--report", tmp_path)
    assert status == 1 and "is a directory" in err
    before = src.read_bytes()
    status, _, err = cli(capsys, "validate", src, "--skip-bad", "--report", src)
    assert status == 1 and "is the input file" in err and src.read_bytes() == before
    ok = tmp_path / "rejected.csv"
    status, _, _ = cli(capsys, "validate", src, "--skip-bad", "--report", ok)
    assert status == 1 and pd.read_csv(ok)["ev_id"].tolist() == ["B"]


@pytest.mark.parametrize("changes, field, rule", [
    ({"battery_kwh": "1e12"}, "battery_kwh", f"must be <= {MAX_BATTERY_KWH:g} kWh"),
    ({"battery_kwh": "inf"}, "battery_kwh", "must be a finite number"),
    ({"charger_kw": "5000", "charger_kva": "5500"}, "charger_kw", f"must be <= {MAX_CHARGER_KW:g} kW"),
    ({"charger_kva": "100"}, "charger_kva", f"must be <= {MAX_KVA_RATIO:g} x charger_kw = 14 kVA"),
])
def test_implausible_sizes_are_rejected(tmp_path, ieee33, changes, field, rule):
    path = write_text(tmp_path, "\n".join([HEADER, line(**changes)]) + "\n")
    refused(path, ieee33, f"row 1 (ev_id 'EV001'), field '{field}' = {changes[field]!r}", rule)


def test_fleet_parameters_have_the_same_upper_bounds():
    for params, field in (({"battery_kwh": 1e12}, "battery_kwh"),
                          ({"charger_kw": 1e4, "charger_kva": 1.1e4}, "charger_kw"),
                          ({"charger_kva": 70.0}, "charger_kva"),
                          ({"battery_kwh": "50"}, "battery_kwh")):
        with pytest.raises(InputError, match=f"field '{field}'"):
            FleetConfig.from_params(**params)
    with pytest.raises(InputError, match="field 'n_evs' = True"):
        FleetConfig.from_params(n_evs=True)


@pytest.mark.parametrize("ev_id, rule", [
    ("=cmd|' /C calc'!A0", "must not start with"),
    ("+SUM(A1:A2)", "must not start with"),
    ("-2+3", "must not start with"),
    ("@SUM(1)", "must not start with"),
    ("EV\x07beep", "printable"),
    ("EV\u202eevil", "printable"),
    ("EV\tA", "printable"),
    ("E" * (MAX_ID_LENGTH + 1), f"at most {MAX_ID_LENGTH} characters"),
])
def test_hostile_ev_ids_are_refused(tmp_path, ieee33, ev_id, rule):
    df = pd.DataFrame([good_row(ev_id=ev_id), good_row(ev_id="OK")]).astype(str)
    with pytest.raises(InputError) as exc:
        validate_reservations(df, ieee33, STATIONS)
    assert f"row 1 (ev_id {ev_id!r}), field 'ev_id' = {ev_id!r}" in str(exc.value)
    assert rule in str(exc.value)
    rep = validate_reservations(df, ieee33, STATIONS, on_error="skip")
    assert list(rep.accepted["ev_id"]) == ["OK"]


def test_report_csv_cannot_inject_formulas(tmp_path, capsys):
    evil = "=cmd|' /C calc'!A0"
    src = write_text(tmp_path, "\n".join([HEADER, line(ev_id=f'"{evil}"'), line(ev_id="B", battery_kwh="-1+cmd")]) + "\n")
    report = tmp_path / "rej.csv"
    status, _, _ = cli(capsys, "validate", src, "--skip-bad", "--report", report)
    assert status == 1
    cells = pd.read_csv(report, dtype=str, keep_default_na=False).to_numpy().ravel()
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert f"'{evil}" in cells                                   # neutralised, still readable


def test_station_buses_must_be_network_buses_other_than_the_substation(tmp_path, ieee33, capsys):
    path = write_text(tmp_path, "\n".join([HEADER, line()]) + "\n")
    for arg in ("99", "1", "14,1", "14,14", "0"):
        status, out, err = cli(capsys, "validate", path, "--station-buses", arg)
        assert status == 1 and out == "", arg
        assert "field 'station_buses'" in err and "2..33" in err, err
    with pytest.raises(SystemExit):
        main(["validate", str(path), "--station-buses", ","])
    with pytest.raises(InputError, match=r"substation \(bus 1\).*2\.\.33"):
        validate_reservations(path, ieee33, (1, 14))
    with pytest.raises(InputError, match=r"unknown bus id\(s\) \[99\].*2\.\.33"):
        validate_reservations(path, ieee33, (99,))
    with pytest.raises(InputError, match=r"substation \(bus 1\)"):
        generate_fleet(ieee33, station_buses=(1, 14))


def test_fleet_command_refuses_the_substation_and_a_missing_out_folder(tmp_path, capsys):
    status, _, err = cli(capsys, "fleet", "--n-evs", "3", "--station-buses", "1,14")
    assert status == 1 and "substation (bus 1)" in err
    status, _, err = cli(capsys, "fleet", "--n-evs", "3", "--out", tmp_path / "nope" / "f.csv")
    assert status == 1 and "does not exist" in err
    (tmp_path / "tou.csv").write_text("hour,period\nnoon,peak\n")
    status, _, err = cli(capsys, "fleet", "--n-evs", "3", "--tou", tmp_path / "tou.csv")
    assert status == 1 and "field 'hour' = 'noon': must be a whole clock hour 0..23" in err


def test_build_sessions_refuses_unvalidated_numbers():
    df = pd.DataFrame([good_row(battery_kwh=float("nan"))])
    with pytest.raises(InputError, match=r"row 1 \(ev_id 'EV001'\), field 'battery_kwh' = nan: "
                                         "must be a finite number; validate"):
        build_sessions(df)


def test_messages_print_plain_numbers(ieee33):
    df = pd.DataFrame([good_row(battery_kwh=0.0, ev_id="A")])
    df["battery_kwh"] = df["battery_kwh"].astype(np.float64)
    with pytest.raises(InputError) as exc:
        validate_reservations(df, ieee33, STATIONS)
    assert str(exc.value) == "reservations, row 1 (ev_id 'A'), field 'battery_kwh' = 0.0: must be > 0"
    rep = validate_reservations(df, ieee33, STATIONS, on_error="skip")
    assert rep.messages() == [str(exc.value)]
    with pytest.raises(InputError) as exc:
        FleetConfig.from_params(v2g_share=np.float64(1.5))
    assert "= 1.5:" in str(exc.value)


def test_read_reservations_returns_text(tmp_path):
    path = write_text(tmp_path, "\n".join([HEADER, line(ev_id=" A")]) + "\n")
    raw = read_reservations(path)
    assert list(raw.columns) == COLUMNS and raw.at[0, "ev_id"] == "A" and raw.at[0, "bus"] == "18"


# =========================================================================== 2. pandapower import
def _pp_feeder(n=5, **kw):
    """A radial pandapower feeder 0-1-2-...-(n-1), 0.4 kV, one 10 kW load per bus but the slack."""
    import pandapower as pp
    net = pp.create_empty_network(name="lv")
    b = [pp.create_bus(net, vn_kv=0.4) for _ in range(n)]
    pp.create_ext_grid(net, b[0])
    for i in range(n - 1):
        pp.create_line_from_parameters(net, b[i], b[i + 1], length_km=0.1, r_ohm_per_km=0.2,
                                       x_ohm_per_km=0.1, c_nf_per_km=0, max_i_ka=1)
    for i in range(1, n):
        pp.create_load(net, b[i], p_mw=0.01, q_mvar=0.002)
    return net


def _pp_refused(net, *parts):
    with pytest.raises(NetworkDataError) as exc:
        evsched.from_pandapower(net)
    msg = str(exc.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert "np." not in msg
    return msg


def test_pp_nan_load_is_an_error():
    net = _pp_feeder()
    net.load.loc[2, "p_mw"] = np.nan
    _pp_refused(net, "load 2", "field 'p_mw' = nan", "finite")
    net = _pp_feeder()
    net.load.loc[1, "scaling"] = np.nan
    _pp_refused(net, "load 1", "field 'scaling' = nan")


def test_pp_load_on_a_missing_bus_is_an_error():
    net = _pp_feeder()
    net.load.loc[3, "bus"] = 42
    _pp_refused(net, "load 3", "field 'bus' = 42", "not in net.bus")
    net = _pp_feeder()
    net.line.loc[1, "to_bus"] = 77                            # today: KeyError: 77
    _pp_refused(net, "line 1", "field 'to_bus' = 77", "not in net.bus")


def test_pp_open_line_switch_drops_the_line():
    import pandapower as pp
    net = _pp_feeder()
    pp.create_line_from_parameters(net, 4, 1, length_km=0.1, r_ohm_per_km=0.2, x_ohm_per_km=0.1,
                                   c_nf_per_km=0, max_i_ka=1)        # line 4 closes a loop ...
    pp.create_switch(net, bus=4, element=4, et="l", closed=False)   # ... but its switch is open
    n = evsched.from_pandapower(net)
    assert n.n_branch == 4 and not n.lines["in_service"].iloc[4]
    assert n.lines["in_service"].iloc[:4].all()
    net.switch.loc[0, "closed"] = True                               # closed: the loop is refused
    _pp_refused(net, "closes a loop")


def test_pp_open_switch_that_islands_a_bus_names_the_switch():
    import pandapower as pp
    net = _pp_feeder()
    pp.create_switch(net, bus=3, element=3, et="l", closed=False)   # line 3 feeds bus 4
    _pp_refused(net, "bus(es) [4]", "switch 0", "open", "not connected")


def test_pp_bus_bus_switches():
    import pandapower as pp
    net = _pp_feeder(4)
    extra = pp.create_bus(net, vn_kv=0.4)                            # bus 4 hangs off bus 3 ...
    pp.create_load(net, extra, p_mw=0.005)
    sw = pp.create_switch(net, bus=3, element=extra, et="b", closed=True)
    n = evsched.from_pandapower(net)                                 # ... closed: fused with bus 3
    assert n.n_bus == 4 and n.buses["p_kw"].sum() == pytest.approx(35.0)
    assert n.buses["p_kw"].iloc[3] == pytest.approx(15.0)
    net.switch.loc[sw, "closed"] = False                             # open: bus 4 is cut off
    _pp_refused(net, "bus(es) [4]", f"switch {sw}", "open", "not connected")


def test_pp_out_of_service_bus():
    import pandapower as pp
    net = _pp_feeder()
    net.bus.loc[2, "in_service"] = False                             # lines 1 and 2 still in service
    _pp_refused(net, "bus 2", "field 'in_service' = False", "line 1")
    net = _pp_feeder()
    spare = pp.create_bus(net, vn_kv=0.4, in_service=False)          # isolated spare bus: dropped
    n = evsched.from_pandapower(net)
    assert n.n_bus == 5 and spare not in set(n.buses["pp_index"])


def test_pp_out_of_service_line_that_islands_names_the_line():
    net = _pp_feeder()
    net.line.loc[2, "in_service"] = False
    _pp_refused(net, "bus(es) [3, 4]", "line 2", "out of service", "not connected")


def test_pp_unsupported_in_service_elements_are_refused():
    import pandapower as pp
    net = _pp_feeder()
    pp.create_shunt(net, 2, q_mvar=0.01)
    _pp_refused(net, "shunt 0", "not supported")
    net = _pp_feeder()
    pp.create_gen(net, 3, p_mw=0.01)
    _pp_refused(net, "gen 0", "not supported")


# =========================================================================== 3. profiles
def _profile(tmp_path, value, column="H0-A_pload"):
    t0 = pd.Timestamp("2016-02-01")
    rows = []
    for k in range(8):
        load, pv = 0.5, 0.1
        if k == 5:
            load, pv = (value, pv) if column == "H0-A_pload" else (load, value)
        rows.append(f"{t0 + pd.Timedelta(minutes=15 * k):%d.%m.%Y %H:%M},{load},{pv}")
    path = tmp_path / "p.csv"
    path.write_text("time,H0-A_pload,PV3\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("value, rule", [
    ("inf", "must be a finite number"),
    ("-inf", "must be a finite number"),
    ("1e12", "must be <= 2 p.u."),
    ("2.5", "must be <= 2 p.u."),
])
def test_profile_non_finite_or_implausible_load(tmp_path, value, rule):
    with pytest.raises(InputError) as exc:
        read_profiles(_profile(tmp_path, value))
    msg = str(exc.value)
    assert "p.csv, timestamp 2016-02-01 01:15, field 'H0-A_pload' = " in msg and rule in msg
    assert "np." not in msg


def test_profile_non_finite_renewable(tmp_path):
    with pytest.raises(InputError, match=r"timestamp 2016-02-01 01:15, field 'PV3' = inf: must be a finite"):
        read_profiles(_profile(tmp_path, "inf", column="PV3"))


def test_profile_file_that_is_not_a_csv(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_profiles(tmp_path)
    bad = tmp_path / "x.csv"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="x.csv.*cannot be read as"):
        read_profiles(bad)
    dup = tmp_path / "d.csv"
    dup.write_text("time,H0-A_pload,H0-A_pload\n01.02.2016 00:00,0.5,0.5\n01.02.2016 00:15,0.5,0.5\n")
    with pytest.raises(InputError, match="d.csv, header, field 'H0-A_pload'.*duplicate column"):
        read_profiles(dup)


# =========================================================================== 4. scale
def _big_file_fleet(ieee33, n: int = 100_000):
    """A user's 100,000-row reservation file: 20 generated fleets of 5000 (the study's maximum
    fleet, evsched.schema) with distinct ids. Speed is measured in the benchmark, not asserted."""
    import pandas as pd
    parts = []
    for k in range(n // 5000):
        f = generate_fleet(ieee33, n_evs=5000, fleet_seed=k + 1)
        f["ev_id"] = [f"EV{k:02d}-{i:05d}" for i in range(len(f))]
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


def test_100k_reservations_validate_and_split_into_sessions(tmp_path, ieee33):
    fleet = _big_file_fleet(ieee33)
    write_fleet(fleet, tmp_path / "f.csv")
    rep = validate_reservations(tmp_path / "f.csv", ieee33, STATIONS)
    s = build_sessions(rep.accepted)
    assert rep.n_accepted == 100_000 and s.n > 100_000


def test_100k_bad_rows_are_all_reported(ieee33):
    f = _big_file_fleet(ieee33).astype(str)
    f["battery_kwh"], f["mode"], f["ev_id"] = "-1", "x", "EV1"
    rep = validate_reservations(f, ieee33, STATIONS, on_error="skip")
    assert rep.n_rejected == 100_000 and len(rep.rejected) == 3 * 100_000 - 1
