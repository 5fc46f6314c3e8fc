"""The batch runner (``make run`` / ``python -m evsched.run_study``) under hostile input.

Output folders (name rules, reserved names, collisions), strict YAML, validation before any
notebook or folder, and completion/atomicity (staging, ``.failed`` folders, ``--only``).
The folder logic runs in a sandboxed copy of ``results/`` with a fake ``execute``; one test
runs a real notebook with papermill.
"""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from evsched import run_study
from evsched.case import load_case
from evsched.errors import InputError
from evsched.params import check_range, check_voltage_band
from evsched.paths import PARAMS, ROOT
from evsched.yamlio import load_yaml_mapping

MARKER = run_study.COMPLETE_MARKER
_declared = functools.lru_cache(maxsize=None)(run_study.declared_parameters)


class FakeNotebooks:
    """Stands in for papermill: each notebook writes ``<stem>.csv`` into its own folder, a
    figure, a shared ``summary.csv`` and its executed copy; it can fail or be interrupted."""

    def __init__(self):
        self.calls, self.fail_at, self.interrupt_at, self.tag = [], None, None, "A"

    def __call__(self, nb, out_nb, parameters):
        import papermill as pm
        self.calls.append((nb.name, dict(parameters)))
        out = run_study.Path(parameters["results_dir"])
        sub = {"00": "network", "01": "forecast", "02": "tou", "03": "reservations"}.get(nb.name[:2], "scenarios")
        (out / sub).mkdir(parents=True, exist_ok=True)
        (out / sub / f"{nb.stem}.csv").write_text(self.tag)
        (out / "figures").mkdir(exist_ok=True)
        (out / "figures" / f"{nb.stem}.html").write_text(self.tag)
        (out / "summary.csv").write_text(self.tag)
        if nb.name.startswith(str(self.interrupt_at)):
            raise KeyboardInterrupt
        if nb.name.startswith(str(self.fail_at)):
            raise pm.PapermillExecutionError(cell_index=1, exec_count=2, source="boom()",
                                             ename="ValueError", evalue="broken", traceback=[])
        out_nb.parent.mkdir(parents=True, exist_ok=True)
        out_nb.write_text(self.tag)


@pytest.fixture
def fake(monkeypatch):
    """The fake ``execute`` (every test using ``repo`` gets it)."""
    fake = FakeNotebooks()
    monkeypatch.setattr(run_study, "execute", fake)
    return fake


@pytest.fixture
def repo(tmp_path, monkeypatch, fake):
    """A sandbox repository: results/ (README.md, bench/), params/default.yaml; fake execute."""
    root = tmp_path / "repo"
    (root / "results" / "bench").mkdir(parents=True)
    (root / "results" / "README.md").write_text("readme")
    (root / "results" / "bench" / "bench.csv").write_text("bench")
    (root / "params").mkdir()
    shutil.copy(PARAMS / "default.yaml", root / "params" / "default.yaml")
    monkeypatch.setattr(run_study, "ROOT", root)
    monkeypatch.setattr(run_study, "RESULTS", root / "results")
    monkeypatch.setattr(run_study, "DEFAULT_PARAMS", root / "params" / "default.yaml", raising=False)
    monkeypatch.setattr(run_study, "declared_parameters", _declared)
    return root


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tree(folder):
    """{relative path: content} of every file under ``folder``."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def main_exit(args, capsys):
    with pytest.raises(SystemExit) as exc:
        run_study.main([str(a) for a in args])
    return exc.value.code, capsys.readouterr().err


# --------------------------------------------------------------------------- 1. output folders
def test_default_file_writes_results_and_other_files_results_name(repo):
    assert run_study.run(repo / "params" / "default.yaml") == repo / "results"
    assert (repo / "results" / MARKER).exists() and (repo / "results" / "summary.csv").exists()
    assert run_study.run(write(repo / "params" / "windy.yaml", "n_evs: 10\n")) == repo / "results" / "windy"
    assert (repo / "results" / "windy" / MARKER).exists()


def test_dotdot_yaml_never_writes_outside_results(repo, fake, capsys):
    bad = write(repo / "params" / "..yaml", "n_evs: 10\n")
    before = sorted(p.name for p in repo.iterdir())
    code, err = main_exit([bad], capsys)
    assert code == 2 and "cannot name an output folder" in err and "rename the file" in err
    assert sorted(p.name for p in repo.iterdir()) == before and not fake.calls


def test_another_default_yaml_does_not_write_the_default_results(repo, capsys):
    other = write(repo / "other" / "default.yaml", "n_evs: 10\n")
    code, err = main_exit([other], capsys)
    assert code == 2 and "reserved" in err and "rename" in err
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["README.md", "bench"]


@pytest.mark.parametrize("name", ["tou", "forecast", "network", "reservations", "scenarios", "figures",
                                  "notebooks", "bench", "lab", "uncertainty", "sweeps", "TOU", "Figures"])
def test_reserved_names_are_refused_with_the_list(repo, fake, name):
    with pytest.raises(InputError) as exc:
        run_study.run(write(repo / "params" / f"{name}.yaml", "n_evs: 10\n"))
    msg = str(exc.value)
    assert f"'{name}' is reserved" in msg and "rename the file" in msg
    assert "tou, uncertainty" in msg and "bench" in msg  # the list of reserved names
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["README.md", "bench"]
    assert not fake.calls


def test_folders_written_by_the_last_default_run_are_reserved(repo):
    run_study.run(repo / "params" / "default.yaml")  # the fake writes summary.csv, network/, ...
    info = json.loads((repo / "results" / MARKER).read_text())
    assert "network" in info["outputs"] and "README.md" not in info["outputs"]
    with pytest.raises(InputError, match="reserved"):
        run_study.output_dir(write(repo / "x" / "network.yaml", ""))


@pytest.mark.parametrize("name", ["a b.yaml", "-x.yaml", "_x.yaml", "x.failed.yaml", "x.txt", "ü.yaml"])
def test_file_names_that_cannot_name_a_folder(repo, name):
    with pytest.raises(InputError, match="rename the file|must be named <name>.yaml"):
        run_study.run(write(repo / "params" / name, "n_evs: 10\n"))
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["README.md", "bench"]


def test_output_folder_must_lie_strictly_inside_results(repo, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (repo / "results" / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="plain folder inside results/"):
        run_study.run(write(repo / "params" / "linked.yaml", "n_evs: 10\n"))
    assert not any((tmp_path / "elsewhere").iterdir())


def test_a_different_file_with_the_same_name_is_refused(repo, capsys):
    first = write(repo / "params" / "case1.yaml", "n_evs: 10\n")
    run_study.run(first)
    kept = tree(repo / "results" / "case1")
    other = write(repo / "elsewhere" / "case1.yaml", "n_evs: 20\n")
    code, err = main_exit([other], capsys)
    assert code == 2 and "params/case1.yaml" in err and str(other) in err
    assert tree(repo / "results" / "case1") == kept
    run_study.run(first)  # the same file may re-run into its own folder


def test_where_the_output_goes_is_printed(repo, capsys):
    run_study.run(write(repo / "params" / "loud.yaml", "n_evs: 10\n"))
    out = capsys.readouterr().out
    assert "params/loud.yaml → results/loud/" in out and "results in results/loud/" in out


# --------------------------------------------------------------------------- 2. YAML
def test_duplicate_key_names_file_key_and_both_lines(tmp_path):
    p = write(tmp_path / "dup.yaml", "n_evs: 10\nv_min_pu: 0.95\nn_evs: 20\n")
    with pytest.raises(InputError) as exc:
        load_yaml_mapping(p)
    assert str(exc.value).startswith(f"{p}: duplicate key 'n_evs' on lines 1 and 3")
    with pytest.raises(InputError, match="duplicate key 'n_evs' on lines 1 and 3"):
        load_case(p)


def test_alias_bomb_is_refused_at_once(repo):
    rows = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    rows += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    bomb = write(repo / "params" / "bomb.yaml", "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"bomb.yaml, line 1: anchor '&a': anchors and aliases are not allowed"):
        run_study.run(bomb)
    with pytest.raises(InputError, match="alias"):
        load_yaml_mapping(write(repo / "alias.yaml", "n_evs: *x\n"))


def test_unquoted_date_is_accepted_as_iso_string(repo, fake):
    p = write(repo / "params" / "day.yaml", "target_day: 2016-12-07\n")
    assert load_yaml_mapping(p) == {"target_day": "2016-12-07"}
    assert load_case(p).forecast["target_day"] == "2016-12-07"
    run_study.run(p)
    given = [prm["target_day"] for nb, prm in fake.calls if "target_day" in prm]
    assert given and all(v == "2016-12-07" for v in given)
    with pytest.raises(InputError, match=r"line 1: '2016-02-30' is not a valid date"):
        load_yaml_mapping(write(repo / "bad_day.yaml", "target_day: 2016-02-30\n"))


@pytest.mark.parametrize("text, message", [
    ("- 1\n- 2\n", "the top level must be a mapping 'name: value', got a list"),
    ("just text\n", "the top level must be a mapping 'name: value', got a str"),
    ("1: 2\n", "every parameter name must be text, got 1 (int)"),
    ("yes: 2\n", "every parameter name must be text, got True (bool)"),
    ("? [1, 2]\n: 3\n", "every parameter name must be text"),
    ("a: [\n", "not valid YAML"),
    ("a: !!python/object/apply:os.system [ls]\n", "not valid YAML"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
])
def test_malformed_yaml_names_the_file(tmp_path, text, message):
    p = write(tmp_path / "bad.yaml", text)
    with pytest.raises(InputError) as exc:
        load_yaml_mapping(p)
    assert str(exc.value).startswith(str(p)) and message in str(exc.value)


def test_binary_unreadable_and_missing_files(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "latin.yaml").write_bytes("n_evs: 10 # caf\xe9\n".encode("latin-1"))
    (tmp_path / "dir.yaml").mkdir()
    for name, message in [("bin.yaml", "not a text file"), ("latin.yaml", "not UTF-8 text"),
                          ("dir.yaml", "not a regular file"), ("nope.yaml", "parameter file not found")]:
        with pytest.raises(InputError, match=f"{name}: {message}"):
            load_yaml_mapping(tmp_path / name)
    assert load_yaml_mapping(write(tmp_path / "empty.yaml", "# nothing\n")) == {}


def test_results_dir_in_a_params_file_is_refused(repo, fake, capsys):
    p = write(repo / "params" / "mine.yaml", "results_dir: /tmp/somewhere\n")
    code, err = main_exit([p], capsys)
    assert code == 2 and "'results_dir' cannot be set" in err and "results/mine/" in err
    assert not (repo / "results" / "mine").exists() and not fake.calls


# --------------------------------------------------------------------------- 3. validation first
@pytest.mark.parametrize("text, expected", [
    ("v2g_share: 1.5\n", "field 'v2g_share' = 1.5: must be in [0, 1]"),
    ("v_min_pu: 1.04\n", "field 'v_min_pu' = 1.04: must be in [0.8, 1.0] p.u."),
    ("v_slack_pu: 5.0\n", "field 'v_slack_pu' = 5.0: must be in [0.9, 1.1] p.u."),
    ("v_slack_pu: true\n", "field 'v_slack_pu' = True: must be a number in [0.9, 1.1] p.u."),
    ("tou_ratio_peak: 0.5\n", "field 'tou_ratio_peak' = 0.5: must be in [1, 10]"),
    ("train_days: 5\n", "field 'train_days' = 5: must be an integer in 28..180"),
    ("forecast_model: foo\n", "field 'forecast_model' = 'foo': must be one of"),
    ("battery_kwh: abc\n", "field 'battery_kwh' = 'abc': must be a number"),
    ("station_buses: [1, 14]\n", "'station_buses' = [1, 14]: bus 1 must be a non-substation bus"),
    ("target_day: '2099-01-01'\n", "field 'target_day' = '2099-01-01': outside the history"),
])
def test_bad_values_stop_before_any_notebook_or_folder(repo, fake, capsys, text, expected):
    p = write(repo / "params" / "bad.yaml", text)
    code, err = main_exit([p], capsys)
    assert code == 2
    assert err.startswith(f"evsched: {p}") and expected in err and "overrides" not in err
    assert "np.float64" not in err
    assert not fake.calls
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["README.md", "bench"]


def test_typo_is_reported_as_unknown_parameter(repo):
    with pytest.raises(InputError, match=r"typo.yaml: unknown parameter\(s\) \['v_slak_pu'\]"):
        run_study.run(write(repo / "params" / "typo.yaml", "v_slak_pu: 1.0\n"))


def test_messages_print_plain_numbers():
    with pytest.raises(InputError) as exc:
        check_range("home_share", np.float64(1.5), 0, 1)
    assert "= 1.5: must be in [0, 1]" in str(exc.value) and "np.float64" not in str(exc.value)
    with pytest.raises(InputError, match=r"'v_min_pu' = 1.04: must be in \[0.8, 1.0\] p.u."):
        check_voltage_band(1.0, np.float64(1.04), 1.05)  # same range as the Case model


# --------------------------------------------------------------------------- 4. completion
def test_failed_run_keeps_the_previous_complete_run(repo, fake, capsys):
    p = write(repo / "params" / "keep.yaml", "n_evs: 10\n")
    run_study.run(p)
    target = repo / "results" / "keep"
    kept = tree(target)
    fake.tag, fake.fail_at = "B", "02"
    with pytest.raises(SystemExit) as exc:
        run_study.run(p)
    assert exc.value.code == 1
    assert tree(target) == kept  # marker included
    failed = repo / "results" / "keep.failed"
    assert (failed / "forecast" / "01_load_forecast.csv").read_text() == "B"
    assert not (failed / MARKER).exists()
    assert "still holds the previous complete run" in capsys.readouterr().err
    assert not (repo / "results" / ".staging-keep").exists()


def test_interrupted_run_keeps_the_previous_complete_run(repo, fake):
    p = write(repo / "params" / "ctrlc.yaml", "n_evs: 10\n")
    run_study.run(p)
    kept = tree(repo / "results" / "ctrlc")
    fake.tag, fake.interrupt_at = "B", "03"
    with pytest.raises(KeyboardInterrupt):
        run_study.run(p)
    assert tree(repo / "results" / "ctrlc") == kept
    assert (repo / "results" / "ctrlc.failed" / "tou" / "02_tou.csv").exists()
    assert not (repo / "results" / "ctrlc.failed" / MARKER).exists()


def test_first_run_that_fails_leaves_no_folder_that_looks_complete(repo, fake):
    fake.fail_at = "00"
    with pytest.raises(SystemExit):
        run_study.run(write(repo / "params" / "fresh.yaml", "n_evs: 10\n"))
    assert not (repo / "results" / "fresh").exists()
    assert not list((repo / "results").rglob(MARKER))


def test_successful_named_run_replaces_the_whole_folder(repo, fake):
    p = write(repo / "params" / "swap.yaml", "n_evs: 10\n")
    run_study.run(p)
    write(repo / "results" / "swap" / "stale.csv", "old")
    fake.tag = "B"
    run_study.run(p)
    target = repo / "results" / "swap"
    assert not (target / "stale.csv").exists() and (target / "summary.csv").read_text() == "B"
    assert sorted(x.name for x in (repo / "results").iterdir()) == ["README.md", "bench", "swap"]


def test_default_run_touches_only_its_own_entries(repo, fake):
    run_study.run(write(repo / "params" / "mine.yaml", "n_evs: 10\n"))
    others = {"README.md": "readme", "bench/bench.csv": "bench"}
    mine = tree(repo / "results" / "mine")
    run_study.run(repo / "params" / "default.yaml")
    fake.tag = "B"
    run_study.run(repo / "params" / "default.yaml")
    res = repo / "results"
    assert tree(res / "mine") == mine
    assert {k: (res / k).read_text() for k in others} == others
    assert (res / "summary.csv").read_text() == "B" and (res / MARKER).exists()
    assert not [x.name for x in res.iterdir() if x.name.startswith(".")]


def test_failed_default_run_keeps_results_and_uses_failed_default(repo, fake):
    run_study.run(repo / "params" / "default.yaml")
    kept = tree(repo / "results")
    fake.tag, fake.fail_at = "B", "04"
    with pytest.raises(SystemExit):
        run_study.run(repo / "params" / "default.yaml")
    after = tree(repo / "results")
    failed = {k: v for k, v in after.items() if k.startswith(".failed-default/")}
    assert {k: v for k, v in after.items() if k not in failed} == kept
    assert failed and f".failed-default/{MARKER}" not in failed
    assert not (repo.parent / "results.failed").exists()


def test_only_needs_a_complete_run_of_the_same_parameters(repo, capsys):
    p = write(repo / "params" / "part.yaml", "n_evs: 10\n")
    code, err = main_exit([p, "--only", "04"], capsys)
    assert code == 2 and "--only 04" in err and "no complete run" in err
    assert not (repo / "results" / "part").exists()
    run_study.run(p)
    p.write_text("n_evs: 20\n")
    code, err = main_exit([p, "--only", "04"], capsys)
    assert code == 2 and "different parameters (differing: n_evs)" in err
    assert json.loads((repo / "results" / "part" / MARKER).read_text())["parameters"] == {"n_evs": 10}


def test_only_updates_in_place_and_records_what_was_rerun(repo, fake):
    p = write(repo / "params" / "part.yaml", "n_evs: 10\n")
    run_study.run(p)
    target = repo / "results" / "part"
    first = json.loads((target / MARKER).read_text())
    fake.tag = "B"
    run_study.run(p, only=["04"])
    info = json.loads((target / MARKER).read_text())
    assert info["rerun_notebooks"] == ["04_scenarios.ipynb"] and info["partial_run"]
    assert set(info["notebooks"]) == set(first["notebooks"])
    assert all(info["notebooks"][k] == first["notebooks"][k] for k in first["notebooks"]
               if k != "04_scenarios.ipynb")
    assert (target / "scenarios" / "04_scenarios.csv").read_text() == "B"
    assert (target / "network" / "00_network.csv").read_text() == "A"
    # the same for the default run in results/ itself
    run_study.run(repo / "params" / "default.yaml")
    run_study.run(repo / "params" / "default.yaml", only=["00"])
    info = json.loads((repo / "results" / MARKER).read_text())
    assert info["rerun_notebooks"] == ["00_network.ipynb"]
    assert (repo / "results" / "network" / "00_network.csv").read_text() == "B"
    assert (repo / "results" / "part" / MARKER).exists()


# --------------------------------------------------------------------------- 5. --help
def test_help_says_where_output_goes_and_documents_only():
    out = subprocess.run([sys.executable, "-m", "evsched.run_study", "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "results/<name>/" in text and "params/default.yaml → results/" in text
    assert "--only NB" in text and "same parameters" in text


# --------------------------------------------------------------------------- real papermill
@pytest.mark.slow
def test_only_with_a_real_notebook(repo, fake, monkeypatch):
    """Notebook 00 really executed by papermill into the staging folder, swapped into a run."""
    monkeypatch.setattr(run_study, "execute", fake)
    p = write(repo / "params" / "real.yaml", "v_min_pu: 0.94\n")
    run_study.run(p)
    monkeypatch.undo()
    monkeypatch.setattr(run_study, "ROOT", repo)
    monkeypatch.setattr(run_study, "RESULTS", repo / "results")
    monkeypatch.setattr(run_study, "DEFAULT_PARAMS", repo / "params" / "default.yaml")
    run_study.run(p, only=["00"])
    target = repo / "results" / "real"
    assert "0.94" in (target / "notebooks" / "00_network.ipynb").read_text()
    assert (target / "network" / "base_case_check.csv").exists()
    assert (target / "scenarios" / "04_scenarios.csv").read_text() == "A"
    assert json.loads((target / MARKER).read_text())["rerun_notebooks"] == ["00_network.ipynb"]


def test_default_run_keeps_sweep_outputs_of_make_sweep(repo, fake, monkeypatch):
    # results/sweeps/ is shared: notebooks write sweeps/<small spec>/, `make sweep` sweeps/<spec>/
    write(repo / "results" / "sweeps" / "year" / "cases.csv", "full year")
    real = fake.__call__

    def with_sweep(nb, out_nb, parameters):
        real(nb, out_nb, parameters)
        write(run_study.Path(parameters["results_dir"]) / "sweeps" / "year_small" / "cases.csv", "small")

    monkeypatch.setattr(run_study, "execute", with_sweep)
    run_study.run(repo / "params" / "default.yaml")
    assert (repo / "results" / "sweeps" / "year" / "cases.csv").read_text() == "full year"
    assert (repo / "results" / "sweeps" / "year_small" / "cases.csv").read_text() == "small"
    run_study.run(repo / "params" / "default.yaml")   # a second run replaces only its own sub-folder
    assert (repo / "results" / "sweeps" / "year" / "cases.csv").read_text() == "full year"


def test_notebooks_outside_their_scope_are_skipped(repo, fake, capsys):
    # notebook 06 is hourly-only (metadata evsched.resolutions): a 15-minute run skips it
    run_study.run(write(repo / "params" / "quarter.yaml", "resolution_min: 15\n"))
    ran = [name for name, _ in fake.calls]
    assert "06_uncertainty.ipynb" not in ran and "04_scenarios.ipynb" in ran
    assert "06_uncertainty.ipynb skipped: written for resolution_min 60 only (this run: resolution_min 15)" \
        in capsys.readouterr().out
    info = json.loads((repo / "results" / "quarter" / MARKER).read_text())
    assert info["notebooks"]["06_uncertainty.ipynb"] == "skipped"
    why = "written for resolution_min 60 only (this run: resolution_min 15)"
    hourly_only = {"06_uncertainty.ipynb": why, "08_paper_calibration.ipynb": why}
    assert info["skipped"] == hourly_only   # the reason is recorded, not only printed
    # a partial re-run keeps the recorded reasons of the notebooks it did not touch
    run_study.run(repo / "params" / "quarter.yaml", only=["04"])
    info = json.loads((repo / "results" / "quarter" / MARKER).read_text())
    assert info["skipped"] == hourly_only and info["rerun_notebooks"] == ["04_scenarios.ipynb"]


@pytest.mark.parametrize("ending", ["complete", "failed", "interrupted"])
def test_the_run_cache_lives_outside_results_and_only_as_long_as_the_run(repo, fake, monkeypatch, ending):
    """Every notebook of a run sees one cache folder (the forecast is computed once per run); it
    is not in results/ and is gone when the run ends, however it ends."""
    from evsched.paths import RUN_CACHE_ENV
    monkeypatch.delenv(RUN_CACHE_ENV, raising=False)
    seen = []
    inner = run_study.execute

    def recording(nb, out_nb, parameters):
        seen.append(run_study.os.environ.get(RUN_CACHE_ENV))
        (run_study.Path(seen[-1]) / f"{nb.stem}.pkl").write_text("x")  # what a notebook caches
        return inner(nb, out_nb, parameters)

    monkeypatch.setattr(run_study, "execute", recording)
    fake.fail_at = "02" if ending == "failed" else None
    fake.interrupt_at = "02" if ending == "interrupted" else None
    p = write(repo / "params" / "cached.yaml", "n_evs: 10\n")
    if ending == "complete":
        run_study.run(p)
    else:
        with pytest.raises((SystemExit, KeyboardInterrupt)):
            run_study.run(p)
    assert len(seen) >= 3 and len(set(seen)) == 1 and seen[0]
    assert repo not in run_study.Path(seen[0]).parents
    assert not run_study.Path(seen[0]).exists()
    assert RUN_CACHE_ENV not in run_study.os.environ
