"""The ``evsched`` command line: ``fleet`` (deterministic CSV) and ``validate`` (every bad-input
case with its exact message and exit status), in process and through the console script."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evsched.cli import main
from evsched.paths import DATA, ROOT
from evsched.reservations import COLUMNS

from ev_strategies import good_row
from test_reservations import BAD_CASES, IDS

EVSCHED = Path(sys.executable).with_name("evsched")


def run(*args):
    """The installed console script (``python -m evsched.cli`` if it is missing)."""
    cmd = [str(EVSCHED)] if EVSCHED.exists() else [sys.executable, "-m", "evsched.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT)


def write(path, rows):
    pd.DataFrame(rows)[COLUMNS].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("changes, field, value, reason", BAD_CASES, ids=IDS)
def test_validate_fail_first_prints_the_exact_message(tmp_path, capsys, changes, field, value, reason):
    path = write(tmp_path / "bad.csv", [good_row(ev_id="EV000"), good_row(**changes)])
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    msg = f"{path}, row 2 (ev_id 'EV001'), field '{field}' = {value!r}: {reason}"
    assert err.splitlines()[0] == f"rejected: {msg}"
    assert err.splitlines()[1] == (f"{path}: stopped at the first rejected row (row 2 of 2: 1 accepted "
                                   "before it, 1 rejected); use --skip-bad to check every row")


def test_validate_skip_bad_through_the_console_script(tmp_path):
    rows = [good_row(ev_id="OK1")] + [good_row(**{**c[0], "ev_id": f"B{i}"})
                                      for i, c in enumerate(BAD_CASES)] + [good_row(ev_id="OK2")]
    path = write(tmp_path / "many.csv", rows)
    report = tmp_path / "rejected.csv"
    out = run("validate", path, "--skip-bad", "--report", report)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    for i, (changes, field, value, reason) in enumerate(BAD_CASES):
        msg = f"rejected: {path}, row {i + 2} (ev_id 'B{i}'), field '{field}' = {value!r}: {reason}"
        assert msg in lines
    n_bad = len(BAD_CASES)
    assert out.stdout.strip() == f"{path}: 2 accepted, {n_bad} rejected (of {n_bad + 2} rows)"
    rep = pd.read_csv(report, keep_default_na=False, dtype=str)
    assert list(rep.columns) == ["row", "ev_id", "field", "value", "reason"] and len(rep) == n_bad


def test_validate_good_file_exits_zero():
    out = run("validate", DATA / "reservations" / "default_fleet.csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("default_fleet.csv: 500 accepted, 0 rejected (of 500 rows)")


def test_validate_station_buses_option(tmp_path, capsys):
    path = write(tmp_path / "s.csv", [good_row(station=18)])
    assert main(["validate", str(path), "--station-buses", "18,22,33"]) == 0
    assert main(["validate", str(path)]) == 1
    assert "must be one of the station buses [14, 22, 30]" in capsys.readouterr().err


def test_validate_missing_file_and_usage(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2


def test_fleet_default_is_the_shipped_file_byte_for_byte(tmp_path):
    out = run("fleet", "--out", tmp_path / "f.csv")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "f.csv").read_bytes() == (DATA / "reservations" / "default_fleet.csv").read_bytes()
    assert "wrote 500 reservations" in out.stderr


def test_fleet_options_and_stdout(tmp_path, capsys):
    assert main(["fleet", "--seed", "3", "--n-evs", "40", "--v2g-share", "0.5",
                 "--station-buses", "18,22,33", "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["fleet", "--seed", "3", "--n-evs", "40", "--v2g-share", "0.5",
                 "--station-buses", "18,22,33", "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    f = pd.read_csv(tmp_path / "a.csv")
    assert len(f) == 40 and set(f["station"]) <= {18, 22, 33}
    assert main(["validate", str(tmp_path / "a.csv"), "--station-buses", "18,22,33"]) == 0
    capsys.readouterr()
    assert main(["fleet", "--n-evs", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == ",".join(COLUMNS)


def test_fleet_bad_option_names_parameter_and_range(capsys):
    assert main(["fleet", "--v2g-share", "1.5"]) == 1
    assert capsys.readouterr().err.strip() == ("evsched fleet: evsched fleet options, fleet parameters, "
                                               "field 'v2g_share' = 1.5: must be in [0, 1]")


def test_fleet_with_a_tou_file(tmp_path):
    from ev_strategies import PLACEHOLDER_TOU
    tou = PLACEHOLDER_TOU.assign(period="flat")  # no peak hour: nobody may offer V2G
    tou.to_csv(tmp_path / "tou.csv", index=False)
    assert main(["fleet", "--n-evs", "50", "--tou", str(tmp_path / "tou.csv"),
                 "--out", str(tmp_path / "f.csv")]) == 0
    assert (pd.read_csv(tmp_path / "f.csv")["mode"] == "charge").all()
