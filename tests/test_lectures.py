"""Notebooks 00-09 are lectures (CONVENTIONS 7 and 12): one text source per notebook (a MyST
Markdown file paired by jupytext), learning goals before the parameters, exercises with hidden,
runnable solutions, references, every figure saved and shown, prose without hand-typed results.

Fast and static: the solutions run with the notebooks under papermill (tests/test_notebooks.py,
``make run``; notebook 06 only where its scope allows, hourly on the IEEE 33-bus feeder) and, for
00 and 02, under nbval in ``make test``. Notebooks 07 and 08 may read the full sweep that
``make sweep`` wrote into the run's folder (READS_FULL_SWEEP), never write there.
"""
from __future__ import annotations

import re
import subprocess
import sys

import jupytext
import pytest

from evsched import run_study
from evsched.paths import NOTEBOOKS, ROOT

LECTURES = ("00_network", "01_load_forecast", "02_tou", "03_reservations", "04_scenarios",
            "05_visualisation", "06_uncertainty", "07_year", "08_paper_calibration", "09_network_realism")
PAIR_FORMATS = "ipynb,md:myst"
PAIRED = sorted({nb.stem for nb in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if nb.with_suffix(".md").exists()}
                | set(LECTURES))
PAPER_DOI = "10.19585/j.zjdl.202405005"


def _sync_hint(stem: str) -> str:
    return (f"run `.venv/bin/jupytext --sync notebooks/{stem}.ipynb` (the newer of the two files wins; "
            f"after `evsched params --write` that is the .ipynb, after editing the text that is the .md)")


def _cells(stem: str):
    return jupytext.read(NOTEBOOKS / f"{stem}.md").cells


def _parameters_index(cells) -> int:
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))


def _signature(cell) -> tuple:
    """What a pair must agree on: type, source and the metadata that changes behaviour."""
    meta = {k: cell.metadata[k] for k in ("tags", "jupyter") if k in cell.metadata}
    return cell.cell_type, cell.source, meta


@pytest.mark.parametrize("stem", PAIRED)
def test_notebook_and_its_text_pair_agree(stem):
    ipynb, md = NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.md"
    assert md.exists(), f"notebooks/{stem}.md is missing: run `.venv/bin/jupytext --set-formats {PAIR_FORMATS} {ipynb.relative_to(ROOT)}`"
    a, b = jupytext.read(ipynb), jupytext.read(md)
    assert a.metadata.get("jupytext", {}).get("formats") == PAIR_FORMATS, \
        f"{stem}.ipynb is not paired: run `.venv/bin/jupytext --set-formats {PAIR_FORMATS} notebooks/{stem}.ipynb`"
    assert a.metadata.get("evsched") == b.metadata.get("evsched"), f"{stem}: notebook metadata 'evsched' differs; {_sync_hint(stem)}"
    sa, sb = [_signature(c) for c in a.cells], [_signature(c) for c in b.cells]
    for i, (x, y) in enumerate(zip(sa, sb)):
        assert x == y, f"{stem}: cell {i} differs between .ipynb and .md ({x[1][:60]!r} vs {y[1][:60]!r}); {_sync_hint(stem)}"
    assert len(sa) == len(sb), f"{stem}: {len(sa)} cells in .ipynb, {len(sb)} in .md; {_sync_hint(stem)}"


def test_the_runner_executes_notebooks_only():
    nbs = run_study.notebooks()
    assert all(nb.suffix == ".ipynb" for nb in nbs)
    assert {nb.stem for nb in nbs} >= set(LECTURES)
    assert not (ROOT / "scripts" / "make_nb00.py").exists(), "notebooks are edited as text, not generated"


@pytest.mark.parametrize("stem", LECTURES)
def test_lecture_opens_with_question_goals_and_prerequisites(stem):
    cells = _cells(stem)
    intro = "\n".join(c.source for c in cells[:_parameters_index(cells)] if c.cell_type == "markdown")
    for head in ("**The question.**", "**Learning goals.**", "**Prerequisites.**"):
        assert head in intro, f"{stem}: no {head} before the parameters cell"


@pytest.mark.parametrize("stem", LECTURES)
def test_lecture_ends_with_references(stem):
    last = _cells(stem)[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References"), f"{stem}: last cell"
    for ref in (PAPER_DOI, "Baran", "Farivar", "SimBench", "pandapower"):
        assert ref in last.source, f"{stem}: references lack {ref!r}"


@pytest.mark.parametrize("stem", LECTURES)
def test_exercises_have_hidden_runnable_solutions(stem):
    cells = _cells(stem)
    numbers = []
    for i, c in enumerate(cells):
        m = re.search(r"^### Exercise (\d+)\s*$", c.source, re.M) if c.cell_type == "markdown" else None
        if not m:
            continue
        numbers.append(int(m.group(1)))
        sol = cells[i + 1]
        assert sol.cell_type == "code" and "solution" in sol.metadata.get("tags", []), \
            f"{stem}: exercise {m.group(1)} is not followed by a code cell tagged 'solution'"
        assert sol.metadata.get("jupyter", {}).get("source_hidden") is True, f"{stem}: solution {m.group(1)} not collapsed"
        assert re.search(r"^\s*assert ", sol.source, re.M), f"{stem}: solution {m.group(1)} asserts nothing"
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2, f"{stem}: exercises {numbers}"
    n_solutions = sum("solution" in c.metadata.get("tags", []) for c in cells)
    assert n_solutions == len(numbers), f"{stem}: {n_solutions} solution cells for {len(numbers)} exercises"


FIGURE_BUILDERS = re.compile(r"\b(go\.Figure|make_subplots|px\.\w+|\w+_figure|network_map|voltage_profile|"
                             r"voltage_heatmaps|network_voltage_map)\(")


# Notebooks 07 and 08 *read* the full sweep that `make sweep` wrote into the run's folder
# (results/sweeps/<name>/cases.csv; results_dir itself, since output_dir() maps results/ to
# results/lab/ in JupyterLab) and write their own tables to output_dir(results_dir). This exact
# line is the one use of Path(results_dir) they may make; the rule holds for every other line.
READS_FULL_SWEEP = {"07_year": 'full = Path(results_dir) / "sweeps" / "year" / "cases.csv"',
                    "08_paper_calibration": 'full = Path(results_dir) / "sweeps" / "paper" / "cases.csv"'}


@pytest.mark.parametrize("stem", LECTURES)
def test_every_figure_is_saved_and_shown_and_every_table_goes_to_output_dir(stem):
    code = [c.source for c in _cells(stem) if c.cell_type == "code"]
    text = "\n".join(code)
    if stem in READS_FULL_SWEEP:
        read = READS_FULL_SWEEP[stem]
        assert text.count(read) == 1, f"{stem}: the read of the full sweep changed; update READS_FULL_SWEEP"
        text = text.replace(read, "")
        assert not re.search(r"\b(full|src)\b\S*\.(to_csv|write_text|write_bytes|mkdir)\(", text), \
            f"{stem}: the full sweep's folder is read, never written"
    assert "write_html(" not in text and "Path(results_dir)" not in text, stem
    assert "output_dir(results_dir)" in text, f"{stem}: tables must go to output_dir(results_dir)"
    for src in code:
        if FIGURE_BUILDERS.search(src):
            assert "save_figure(" in src and "show(" in src, f"{stem}: a figure is not saved and shown:\n{src[:200]}"
        last = src.strip().splitlines()[-1] if src.strip() else ""
        assert last.strip() not in ("fig", "fig.show()"), f"{stem}: display figures with show(fig)"


UNIT_NUMBER = re.compile(r"(?<![\w.])[−-]?\d[\d.,]*\s*(?:kW|kWh|kvar|kVA|MW|MWh|p\.u\.|%|Ω)(?!\w)")


@pytest.mark.parametrize("stem", LECTURES)
def test_prose_states_no_result_typed_by_hand(stem):
    """Numbers with units in the prose are results typed by hand (they go stale): print them
    from a cell instead. LaTeX, code spans and the references are exempt, and so is '1 p.u.'."""
    for i, c in enumerate(_cells(stem)):
        if c.cell_type != "markdown" or c.source.startswith("## References"):
            continue
        prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", " ", c.source, flags=re.S)
        found = [m.group(0) for m in UNIT_NUMBER.finditer(prose) if m.group(0) != "1 p.u."]
        assert not found, f"{stem}, cell {i}: {found} typed in the prose; print it from a code cell"


def test_lectures_pass_ruff():
    paths = [str(NOTEBOOKS / f"{stem}.ipynb") for stem in LECTURES]
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *paths],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
