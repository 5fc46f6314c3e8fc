"""The static HTML report (``make report``, :mod:`evsched.book`).

Fast tests build a report from a fabricated run (one executed notebook made here). The slow
browser test executes two real notebooks (00 network, 02 TOU: about 15 s) into a temporary
run folder, builds its report and opens every page in Debian's Chromium through playwright
over file:// URLs: no console error, no request other than file:// (or data:), every plotly
figure drawn (an svg inside each ``.js-plotly-plot``), every link of the index and gallery
resolving, and on the notebook pages the LaTeX typeset by the report's local MathJax (every
formula output, none a TeX error, no ``$$`` left in the text; notebook 00's DistFlow
equations drawn as a multi-line display). Without /usr/bin/chromium it is skipped with the
command that installs it.
"""
from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest

from evsched import book, figures, run_study
from evsched.errors import InputError
from evsched.paths import PARAMS

SUMMARY = pd.DataFrame({"scenario": ["S0", "S1", "S2", "S3"], "peak_valley_kw": [2500.5, 2105.2, 1533.3, 1536.4],
                        "loss_kwh": [913.0, 1318.0, 786.1, 442.1], "exact": [True, True, True, True]})
COMPARISON = pd.DataFrame({"metric": ["loss_kwh", "peak_valley_kw"], "comparison": ["S2 vs S1", "S2 vs S1"],
                           "paper_pct": [-85.19, -35.42], "ours_pct": [-40.36, -27.17]})


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.srcs, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.srcs.append(a["src"])
        if tag == "link" and a.get("href"):
            self.srcs.append(a["href"])


def _parse(page: Path) -> _Links:
    p = _Links()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def _finish_run(run: Path, notebooks: dict) -> None:
    SUMMARY.to_csv(run / "summary.csv", index=False)
    COMPARISON.to_csv(run / "comparison.csv", index=False)
    (run / "run_info.json").write_text(json.dumps({
        "params_file": "params/default.yaml", "parameters": {"n_evs": 500}, "notebooks": notebooks,
        "partial_run": False, "total_seconds": 1.0, "python": "3.11", "machine": "x86_64",
        "finished": "2026-01-01T00:00:00"}))


@pytest.fixture
def fabricated_run(tmp_path, monkeypatch):
    """A complete run folder: one executed notebook (a show() output and a plotly-only output,
    as a bare ``fig`` leaves), two figures, the headline tables, run_info.json."""
    monkeypatch.setenv(figures.BATCH_ENV, "1")
    monkeypatch.setenv(figures.PNG_ENV, "0")
    run = tmp_path / "run"
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], hovertemplate="%{y} kW<extra></extra>"))
    fig.update_layout(title="bars", height=300)
    figures.save_figure(fig, run, "bars")
    figures.save_figure(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), run, "line")
    captured = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: captured.append(obj))
    figures.show(fig)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 00 · A fabricated notebook\n\nText with $x^2$."),
        nbformat.v4.new_code_cell("show(fig)", execution_count=1,
                                  outputs=[nbformat.v4.new_output("display_data", data=captured[0])]),
        nbformat.v4.new_code_cell("fig", execution_count=2, outputs=[nbformat.v4.new_output(
            "execute_result", execution_count=2,
            data={book.PLOTLY_MIME: json.loads(fig.to_json())})]),
    ])
    (run / "notebooks").mkdir(parents=True)
    nbformat.write(nb, run / "notebooks" / "00_fabricated.ipynb")
    _finish_run(run, {"00_fabricated.ipynb": 1.0})
    return run


def test_report_needs_a_complete_run(tmp_path, capsys):
    with pytest.raises(InputError, match=r"no complete run .*run the study first \(`make run`\)"):
        book.build_report(tmp_path)
    with pytest.raises(SystemExit) as exc:
        book.main([str(tmp_path)])
    assert exc.value.code == 2
    assert "make run" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_plotly_only_outputs_get_html(fabricated_run):
    nb = nbformat.read(fabricated_run / "notebooks" / "00_fabricated.ipynb", as_version=4)
    fixed = book.add_html_to_plotly_outputs(nb)
    outs = [o for c in fixed.cells for o in c.get("outputs", [])]
    assert all("text/html" in o["data"] and "Plotly.newPlot" in o["data"]["text/html"] for o in outs)
    assert "text/html" not in nb.cells[2].outputs[0]["data"]          # the original is untouched


def test_report_structure_and_offline(fabricated_run):
    index = book.build_report(fabricated_run)
    site = index.parent
    assert site == fabricated_run / "report"
    for rel in ("gallery.html", "figures/plotly.min.js", "figures/bars.html", "figures/line.html",
                "notebooks/00_fabricated.html", "data/summary.csv", "data/comparison.csv"):
        assert (site / rel).is_file(), rel
    text = index.read_text()
    assert "1,318" in text and "-85.19" in text and "A fabricated notebook" in text   # headline tables
    _assert_offline(site)
    nb_html = (site / "notebooks" / "00_fabricated.html").read_text()
    assert nb_html.count("Plotly.newPlot") == 2 and "../figures/plotly.min.js" in nb_html
    if book.mathjax_source() is not None:                          # maths typeset by a local MathJax
        assert '<script src="mathjax/MathJax.js"></script>' in nb_html and "MathJax.Hub.Config" in nb_html
        for rel in ("MathJax.js", "config/TeX-AMS-MML_HTMLorMML-full.js", "extensions/TeX/AMSmath.js",
                    "jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js",
                    "fonts/HTML-CSS/STIX-Web/woff/STIXMathJax_Main-Regular.woff"):
            assert (site / "notebooks" / book.MATHJAX_DIR / rel).is_file(), rel
        assert not (site / "notebooks" / book.MATHJAX_DIR / "localization").exists()
    # rebuilt from scratch: a stale file disappears
    (site / "stale.html").write_text("old")
    book.build_report(fabricated_run)
    assert not (site / "stale.html").exists()


def test_report_without_mathjax(fabricated_run, monkeypatch, capsys):
    """An environment without jupyter-server-mathjax still gets its report: formulas as TeX
    source, one line saying why."""
    monkeypatch.setattr(book, "mathjax_source", lambda: None)
    site = book.build_report(fabricated_run).parent
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "jupyter-server-mathjax" in out and "not installed" in out
    nb_html = (site / "notebooks" / "00_fabricated.html").read_text()
    assert "MathJax" not in nb_html and "$x^2$" in nb_html
    assert not (site / "notebooks" / book.MATHJAX_DIR).exists()
    _assert_offline(site)


def _assert_offline(site: Path) -> None:
    for page in site.rglob("*.html"):
        srcs = _parse(page).srcs
        remote = [s for s in srcs if re.match(r"(?i)(https?:)?//", s) or "cdn." in s]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
        for s in srcs:
            if not s.startswith("data:"):
                assert (page.parent / unquote(s)).resolve().is_file(), f"{page.relative_to(site)}: {s} missing"


def _assert_links_resolve(page: Path) -> int:
    parsed = _parse(page)
    n = 0
    for href in parsed.links:
        url = urlparse(href)
        assert not url.scheme and not url.netloc, f"{page.name}: external link {href}"
        target = (page.parent / unquote(url.path)).resolve() if url.path else page
        assert target.is_file(), f"{page.name}: {href} does not resolve"
        if url.fragment:
            assert url.fragment in _parse(target).ids, f"{page.name}: {href}: no #{url.fragment}"
        n += 1
    return n


# --- the browser test ----------------------------------------------------------------------

# MathJax is done with a page once its startup has ended and every formula has its HTML-CSS
# output (a <nobr>, or a .noError box for TeX it cannot parse) in its .MathJax frame; the fast
# preview (.MJXp-math) shown first is gone by then. 'End' alone is too early: the HTML-CSS pass
# can still be running. A TeX error is an <merror> in the formula's MathML, an undefined macro a
# red <mtext> holding its name; TeX source would show in the Markdown cells' text.
MATHJAX_END = "MathJax.Hub.Register.StartupHook('End', function () { window.evschedMathJaxEnd = true; })"
MATHJAX_DONE = """() => window.evschedMathJaxEnd === true && !document.querySelector('.MJXp-math')
    && document.querySelectorAll('.MathJax > nobr, .MathJax .noError').length
       === document.querySelectorAll('script[type^="math/tex"]').length"""
MATHJAX_STATE = r"""() => {
    const jax = MathJax.Hub.getAllJax().map(j => {
        let mml = '';
        try { mml = j.root.toMathML(''); } catch (e) { mml = 'toMathML failed: ' + e; }
        const frame = document.getElementById(j.inputID + '-Frame');
        const box = frame ? (frame.closest('.MathJax_Display') || frame) : null;
        return {mml: mml, display: j.root.display === 'block', height: box ? box.getBoundingClientRect().height : 0};
    });
    return {formulas: document.querySelectorAll('script[type^="math/tex"]').length,
            typeset: document.querySelectorAll('.MathJax > nobr, .MathJax .noError').length,
            displays: jax.filter(j => j.display),
            errors: jax.filter(j => /<merror|<mtext mathcolor="red">\\/.test(j.mml)).map(j => j.mml.slice(0, 200)),
            markdown: Array.from(document.querySelectorAll('.jp-RenderedMarkdown')).map(e => e.innerText).join('\n')};
}"""


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """Notebooks 00 and 02 executed with papermill (as `make run` does) into a temporary run
    folder, completed with headline tables and run_info.json, then its report."""
    if not book.CHROMIUM.exists():
        pytest.skip(book.CHROMIUM_HINT)
    pytest.importorskip("playwright.sync_api")
    run = tmp_path_factory.mktemp("book") / "run"
    params = run_study.load_params(PARAMS / "default.yaml")
    old = os.environ.get(figures.BATCH_ENV)
    os.environ[figures.BATCH_ENV] = "1"
    try:
        timings = {}
        for nb in run_study.notebooks():
            if nb.name[:2] in ("00", "02"):
                declared = run_study.declared_parameters(nb)
                given = {k: v for k, v in params.items() if k in declared}
                run_study.execute(nb, run / "notebooks" / nb.name, {**given, "results_dir": str(run)})
                timings[nb.name] = 1.0
    finally:
        if old is None:
            os.environ.pop(figures.BATCH_ENV, None)
        else:
            os.environ[figures.BATCH_ENV] = old
    _finish_run(run, timings)
    return book.build_report(run).parent


@pytest.mark.slow
def test_report_in_a_browser(real_site):
    from playwright.sync_api import sync_playwright

    site = real_site
    _assert_offline(site)
    assert _assert_links_resolve(site / "index.html") >= 4
    assert _assert_links_resolve(site / "gallery.html") >= 2
    pages = ([site / "index.html", site / "gallery.html"] + sorted((site / "notebooks").glob("*.html"))
             + sorted((site / "figures").glob("*.html")))
    problems, n_plots = [], 0
    maths = book.mathjax_source() is not None          # jupyter-server-mathjax installed (pinned)
    n_formulas = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(book.CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for page_file in pages:
                page = context.new_page()
                errors, remote = [], []
                page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on("requestfailed", lambda r, e=errors: e.append(f"failed: {r.url}"))
                page.on("request", lambda r, e=remote: None if r.url.startswith(("file:", "data:", "about:", "blob:"))
                        else e.append(r.url))
                page.goto(page_file.resolve().as_uri(), wait_until="load")
                name = str(page_file.relative_to(site))
                if maths and page_file.parent.name == "notebooks":
                    page.evaluate(MATHJAX_END)
                    try:
                        page.wait_for_function(MATHJAX_DONE, timeout=60_000)
                    except Exception:  # playwright's TimeoutError
                        problems.append(f"{name}: MathJax did not typeset the page within 60 s")
                    state = page.evaluate(MATHJAX_STATE)
                    n_formulas[page_file.stem] = state["typeset"]
                    if state["typeset"] != state["formulas"]:
                        problems.append(f"{name}: {state['typeset']} of {state['formulas']} formulas typeset")
                    if state["errors"]:
                        problems.append(f"{name}: {len(state['errors'])} TeX errors {state['errors'][:2]}")
                    if "$$" in state["markdown"] or "\\begin{" in state["markdown"]:
                        problems.append(f"{name}: TeX source left in the Markdown text")
                    if page_file.stem.startswith("00_"):   # the DistFlow equations of section 3
                        distflow = [d for d in state["displays"] if "<mtable" in d["mml"]]
                        if not distflow or distflow[0]["height"] < 80:
                            problems.append(f"{name}: DistFlow equations not drawn as a multi-line display "
                                            f"(displays {[round(d['height']) for d in state['displays']]} px high)")
                        if "\\ell_{k,t}" in state["markdown"]:
                            problems.append(f"{name}: DistFlow equations shown as TeX source")
                plots = page.locator(".js-plotly-plot")
                count = plots.count()
                drawn = page.locator(".js-plotly-plot svg.main-svg").count()
                placeholders = page.locator(".evsched-figure > p").count()
                broken_imgs = page.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0)"
                                            ".map(i => i.src)")
                if errors:
                    problems.append(f"{name}: console errors {errors[:3]}")
                if remote:
                    problems.append(f"{name}: network requests {remote[:3]}")
                if page_file.parent.name in ("notebooks", "figures") and count == 0:
                    problems.append(f"{name}: no plotly figure")
                if count and page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                                           ".filter(d => !d.querySelector('svg.main-svg')).length"):
                    problems.append(f"{name}: {count} plotly figures, only {drawn} svg layers drawn")
                if placeholders:
                    problems.append(f"{name}: {placeholders} figure placeholders never replaced")
                if broken_imgs:
                    problems.append(f"{name}: broken images {broken_imgs[:3]}")
                n_plots += count
                page.close()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert n_plots >= 4
    if maths:
        assert n_formulas.get("00_network", 0) >= 20, n_formulas   # 00's inline and display maths
