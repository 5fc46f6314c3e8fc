"""A static HTML report of an executed study, readable offline (``make report``).

``python -m evsched.book [FOLDER] [--params PARAMS]`` turns a *complete* run (its folder holds
``run_info.json``: ``results/`` for the default run, ``results/<name>/`` for
``params/<name>.yaml``) into ``<run>/report/``:

* ``index.html`` — the run (parameter file, date, time per notebook, all parameters), the
  headline tables ``summary.csv`` and ``comparison.csv`` as HTML tables, links to every
  executed notebook and to the figure gallery;
* ``notebooks/<nb>.html`` — every executed notebook converted by nbconvert (lab template),
  its plotly figures interactive: an output that carries only the plotly MIME type gets the
  HTML form of :func:`evsched.figures.figure_html`;
* ``gallery.html`` and ``figures/`` — every figure of the run (``<run>/figures/*.html``, PNG
  previews where ``make png-support`` made them), with ``plotly.min.js`` copied beside them;
* ``data/`` — the two headline CSV files;
* ``notebooks/mathjax/`` — the part of MathJax 2.7 that typesets the notebooks' LaTeX
  (:data:`MATHJAX_PARTS`, about 2.5 MB), copied from the Jupyter package
  ``jupyter-server-mathjax``.

Offline by construction: the only scripts are ``figures/plotly.min.js``,
``notebooks/mathjax/`` and inline ones; the nbconvert template's require.js, MathJax and
Mermaid (all from a CDN) are left out. MathJax is the local copy, configured inline
(:data:`MATHJAX_CONFIG`: ``$…$``/``\\(…\\)`` inline, ``$$…$$``/``\\[…\\]`` display, HTML-CSS
output with the bundled STIX-Web woff fonts, no contextual menu, whose accessibility explorer
would fetch speech rules from a CDN). Without ``jupyter-server-mathjax`` the report is built
all the same, with formulas shown as their TeX source and one line saying so. The report is
rebuilt from scratch each time (into a staging folder, then swapped in), so it always
matches the run's current files.
"""
from __future__ import annotations

import argparse
import copy
import html
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from evsched.errors import InputError
from evsched.paths import PARAMS, ROOT

COMPLETE_MARKER = "run_info.json"
DEFAULT_PARAMS = PARAMS / "default.yaml"
REPORT_DIR = "report"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_HINT = ("Chromium is not installed: the browser test of the report (tests/test_book.py) "
                 "is skipped and figures have no PNG previews; install it with `make png-support` "
                 "(apt-get install chromium)")

_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}
<script src="{{ resources.evsched_plotly_js }}"></script>
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
{%- if resources.evsched_mathjax %}
<script type="text/x-mathjax-config">
{{ resources.evsched_mathjax_config }}
</script>
<script src="{{ resources.evsched_mathjax }}"></script>
{%- endif -%}
{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style>
  nav.evsched-nav { font: 14px sans-serif; padding: 8px 16px; background: #f4f6f8;
                    border-bottom: 1px solid #ddd; position: sticky; top: 0; z-index: 10; }
  nav.evsched-nav a { margin-right: 1.5em; }
</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="evsched-nav"><a href="../index.html">← report index</a>
{%- for name, title in resources.evsched_notebooks -%}
<a href="{{ name }}.html">{{ name[:2] }}</a>
{%- endfor -%}
<a href="../gallery.html">figures</a></nav>
{%- endblock body_header -%}
"""

MATHJAX_DIR = "mathjax"  # under notebooks/ (Firefox loads file:// fonts from the page's folder or below only)
MATHJAX_HINT = ("jupyter-server-mathjax (MathJax) is not installed: the report's formulas show as TeX source; "
                "install it (`make setup`, or `.venv/bin/pip install jupyter-server-mathjax==0.2.6` as pinned "
                "in requirements.lock) and run `make report` again")
#: What of ``jupyter_server_mathjax/static`` (MathJax 2.7) the report ships: the combined
#: configuration (TeX input, AMS, HTML-CSS/PreviewHTML output, tex2jax, menu code, all in one
#: file) and what it loads on demand while typesetting: TeX extensions (``\cancel``, ``\color``,
#: …), operator tables, HTML-CSS autoload modules, the STIX-Web font data and woff fonts. Left
#: out (about 8 MB): the SVG output fonts (the package has no SVG output jax), the localisations
#: and the accessibility extensions (reached only through the contextual menu, which is off).
MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "extensions",
                 "jax/input", "jax/element", "jax/output/HTML-CSS", "fonts/HTML-CSS/STIX-Web/woff")
MATHJAX_SKIP = ("a11y",)  # under extensions/
MATHJAX_CONFIG_FILE = "config/TeX-AMS-MML_HTMLorMML-full.js"
#: The inline configuration of every notebook page, before ``MathJax.js`` loads: nbconvert's
#: delimiters and equation numbering; ``text-macros`` so that ``\_`` inside ``\texttt{}`` is an
#: underscore; HTML-CSS output with the STIX-Web woff fonts only (no local fonts, no image
#: fonts: neither is shipped); no contextual menu (its renderer, language and accessibility
#: entries load files that are not shipped, the accessibility explorer speech rules from a
#: CDN). The ``src: null`` entries drop the ``src`` of @font-face rules MathJax declares but
#: does not need here, each of which Chromium reports as a console error on file:// pages: the
#: HTML-CSS test font ``url('about:blank')`` (a font that never loads, as no source does) and
#: the MathJax TeX ``.otf`` fonts that the MathML output jax (started alongside, for the hidden
#: assistive MathML) points at and the package does not ship.
MATHJAX_CONFIG = r"""MathJax.Hub.Config({
  config: ["TeX-AMS-MML_HTMLorMML-full.js"],
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  TeX: {extensions: ["text-macros.js"], equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}, styles: {"@font-face": {src: null}}},
  NativeMML: {styles: {"@font-face /*1*/": {src: null}, "@font-face /*2*/": {src: null},
                       "@font-face /*3*/": {src: null}, "@font-face /*4*/": {src: null},
                       "@font-face /*5*/": {src: null}, "@font-face /*6*/": {src: null}}},
  showMathMenu: false, showMathMenuMSIE: false,
  displayAlign: "center", messageStyle: "none"
});"""

_CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; max-width: 1180px; margin: 0 auto; padding: 0 24px 48px; }
h1 { font-size: 1.7em; margin-top: 1.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th { background: #f4f6f8; } td:first-child, th:first-child, td.text { text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
.meta { color: #555; } .note { color: #666; font-size: 13px; }
ol.notebooks li { margin: 0.3em 0; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 18px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px; background: #fff; }
.card h3 { font-size: 14px; margin: 0 0 6px; } .card img { width: 100%; height: auto; display: block; }
.card iframe { width: 100%; height: 420px; border: 0; }
nav.top a { margin-right: 1.2em; }
"""


# --------------------------------------------------------------------------- inputs
def run_folder(params: str | os.PathLike | None = None, folder: str | os.PathLike | None = None) -> Path:
    """The run folder of ``folder`` (as given) or of a parameter file (``results/`` for
    params/default.yaml, ``results/<name>/`` otherwise; the rule of :mod:`evsched.run_study`)."""
    if folder is not None:
        return Path(folder)
    from evsched.run_study import output_dir
    return output_dir(Path(params) if params else DEFAULT_PARAMS)


def check_complete(run: Path, how: str = "make run") -> dict:
    """``run_info.json`` of a complete run, else :class:`InputError` saying to run the study
    first (with the command ``how``)."""
    marker = run / COMPLETE_MARKER
    if not marker.is_file():
        raise InputError(f"{_rel(run)}/ holds no complete run (no {COMPLETE_MARKER}): run the study "
                         f"first (`{how}`), then `{how.replace('make run', 'make report')}` again")
    try:
        return json.loads(marker.read_text())
    except ValueError as exc:
        raise InputError(f"{_rel(marker)} is unreadable ({exc}); re-run the study (`make run`)") from None


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------- notebooks
def notebook_title(nb) -> str:
    """The first Markdown heading of a notebook (without '#'), or ''."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.lstrip().startswith("#"):
                    return line.lstrip("# ").strip()
    return ""


def add_html_to_plotly_outputs(nb, plotlyjs_src: str = "../figures/plotly.min.js"):
    """A copy of ``nb`` where every output carrying only the plotly MIME type also gets the
    self-drawing HTML of :func:`evsched.figures.figure_html` (what nbconvert keeps)."""
    from evsched.figures import figure_html

    nb = copy.deepcopy(nb)
    for k, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            data = out.get("data", {})
            if PLOTLY_MIME in data and "text/html" not in data:
                spec = data[PLOTLY_MIME]
                spec = spec if isinstance(spec, dict) else json.loads(spec)
                data["text/html"] = figure_html(spec, plotlyjs_src=plotlyjs_src,
                                                div_id=f"evsched-fig-c{k}-o{j}")
    return nb


def mathjax_source() -> Path | None:
    """MathJax 2.7's folder in the installed ``jupyter-server-mathjax`` (found without importing
    it, which would import jupyter_server), or None if that package is absent or incomplete."""
    try:
        spec = importlib.util.find_spec("jupyter_server_mathjax")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return None
    static = Path(spec.origin).parent / "static"
    complete = all((static / f).is_file() for f in ("MathJax.js", MATHJAX_CONFIG_FILE,
                                                    "jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js"))
    return static if complete else None


def copy_mathjax(static: Path, dest: Path) -> None:
    """Copy :data:`MATHJAX_PARTS` of MathJax's ``static`` folder into ``dest`` (what the notebook
    pages load: about 190 files, 2.5 MB)."""
    for part in MATHJAX_PARTS:
        src = static / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=lambda d, names: [n for n in names if n in MATHJAX_SKIP])
        elif src.is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)


def convert_notebook(src: Path, dest: Path, notebooks: list[tuple[str, str]], mathjax: str | None = None) -> str:
    """Convert one executed notebook to HTML (offline lab template); returns its title.
    ``mathjax``: the relative URL of a local ``MathJax.js`` the page loads, configured with
    :data:`MATHJAX_CONFIG` (None: formulas stay as TeX source)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(src, as_version=4)
    title = notebook_title(nb) or src.stem
    nb.metadata["title"] = title
    nb = add_html_to_plotly_outputs(nb)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"evsched_report.html.j2": _TEMPLATE})],
                            template_file="evsched_report.html.j2")
    body, _ = exporter.from_notebook_node(nb, resources={
        "evsched_plotly_js": "../figures/plotly.min.js", "evsched_notebooks": notebooks,
        "evsched_mathjax": mathjax, "evsched_mathjax_config": MATHJAX_CONFIG})
    dest.write_text(body, encoding="utf-8")
    return title


# --------------------------------------------------------------------------- pages
def figure_title(path: Path) -> str:
    """The title of a plotly HTML figure (its layout's), or its file name made readable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    i = text.find("Plotly.newPlot(")
    if i >= 0:  # Plotly.newPlot("id", [data], {layout}, {config}) as plotly's write_html writes it
        dec, pos, args = json.JSONDecoder(), i + len("Plotly.newPlot("), []
        try:
            for _ in range(3):
                while text[pos] in " \t\r\n,":
                    pos += 1
                value, pos = dec.raw_decode(text, pos)
                args.append(value)
            title = args[2].get("title")
            title = title.get("text") if isinstance(title, dict) else title
            if title:
                return re.sub(r"<[^>]+>", " ", str(title)).strip()
        except (ValueError, IndexError, AttributeError):
            pass
    return path.stem.replace("_", " ")


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _table(df, float_format="{:,.4g}") -> str:
    import numbers

    import numpy as np

    def cell(x):
        if isinstance(x, (bool, np.bool_)):
            return "<td>" + ("yes" if x else "no") + "</td>"
        if isinstance(x, numbers.Integral):
            return f"<td>{int(x):,}</td>"
        if isinstance(x, numbers.Real):
            return "<td>" + ("" if x != x else float_format.format(float(x))) + "</td>"
        return f'<td class="text">{html.escape(str(x))}</td>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or ""] + list(df.columns))
    rows = "".join("<tr><td>" + html.escape(str(i)) + "</td>" + "".join(cell(v) for v in row) + "</tr>"
                   for i, row in zip(df.index, df.itertuples(index=False)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _headline_tables(run: Path) -> str:
    import pandas as pd

    parts = []
    summary, comparison = run / "summary.csv", run / "comparison.csv"
    if summary.is_file():
        s = pd.read_csv(summary).set_index("scenario")
        t = s.T
        t.index.name = "metric"
        t = t.astype(object)
        parts.append("<h2>Scenario summary (<code>summary.csv</code>)</h2>"
                     '<p class="note">S0 uncontrolled charging, S1 base load, S2 EV active power only, '
                     "S3 full P+Q coordination; units in the metric names (kW, kWh, p.u.).</p>" + _table(t))
    else:
        parts.append('<p class="note">summary.csv is missing from this run.</p>')
    if comparison.is_file():
        c = pd.read_csv(comparison)
        c.index = c.pop("metric")
        c.index.name = "metric"
        parts.append("<h2>Paper vs this study (<code>comparison.csv</code>, % change)</h2>"
                     + _table(c, "{:,.2f}"))
    return "\n".join(parts)


def _index(run: Path, info: dict, notebooks: list[tuple[str, str]], n_figures: int) -> str:
    times = info.get("notebooks") if isinstance(info.get("notebooks"), dict) else {}
    items = "".join(
        f'<li><a href="notebooks/{html.escape(stem)}.html">{html.escape(title)}</a>'
        f' <span class="note">({html.escape(stem)}.ipynb'
        + (f", {times[stem + '.ipynb']:.0f} s" if isinstance(times.get(stem + ".ipynb"), (int, float)) else "")
        + ")</span></li>" for stem, title in notebooks)
    params = info.get("parameters") if isinstance(info.get("parameters"), dict) else {}
    prows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                    for k, v in params.items())
    data_links = " · ".join(f'<a href="data/{n}">{n}</a>' for n in ("summary.csv", "comparison.csv")
                            if (run / n).is_file())
    body = f"""
<nav class="top note"><a href="#results">results</a><a href="#notebooks">notebooks</a><a href="gallery.html">figures</a></nav>
<h1>Scheduled EV charging on the IEEE 33-bus feeder — executed study</h1>
<p class="meta">Run of <code>{html.escape(str(info.get('params_file', '?')))}</code>, finished
{html.escape(str(info.get('finished', '?')))} in {info.get('total_seconds', '?')} s
(Python {html.escape(str(info.get('python', '?')))}, {html.escape(str(info.get('machine', '?')))}){
' — <b>partial run</b> (re-ran ' + html.escape(', '.join(info.get('rerun_notebooks') or [])) + ')' if info.get('partial_run') else ''}.
Report built {time.strftime('%Y-%m-%d %H:%M')} by <code>make report</code>; it reads offline.</p>
<p>This study reproduces the process of Cao, Zhang, Jiang &amp; Lü, <i>Zhejiang Electric Power</i> 2024
(DOI 10.19585/j.zjdl.202405005): forecast, time-of-use prices, EV reservations, station aggregation and a
24-hour SOCP optimal power flow, checked against an exact AC power flow.</p>
<details><summary>All parameters of this run</summary><table><tbody>{prows}</tbody></table></details>
<div id="results">{_headline_tables(run)}</div>
<p class="note">Data: {data_links or 'none'}</p>
<h2 id="notebooks">Executed notebooks</h2>
<ol class="notebooks">{items}</ol>
<h2>Figures</h2>
<p><a href="gallery.html">Gallery of all {n_figures} figures</a> (interactive: zoom, hover for values with units).</p>
"""
    return _page("evsched — executed study", body)


def _gallery(figdir: Path) -> tuple[str, int]:
    cards = []
    files = sorted(p for p in figdir.glob("*.html"))
    for p in files:
        title = figure_title(p)
        png = p.with_suffix(".png")
        if png.is_file():
            preview = (f'<a href="figures/{p.name}"><img src="figures/{png.name}" '
                       f'alt="{html.escape(title)}"></a>')
        else:
            preview = f'<iframe src="figures/{p.name}" title="{html.escape(title)}" loading="lazy"></iframe>'
        cards.append(f'<div class="card"><h3><a href="figures/{p.name}">{html.escape(title)}</a></h3>'
                     f'<p class="note">{p.name}</p>{preview}</div>')
    body = (f'<nav class="top note"><a href="index.html">← report index</a></nav>'
            f"<h1>Figures ({len(files)})</h1>"
            '<p class="note">Click a title for the interactive figure.</p>'
            f'<div class="gallery">{"".join(cards)}</div>')
    return _page("evsched — figures", body), len(files)


# --------------------------------------------------------------------------- build
def build_report(run: Path, out: Path | None = None, how: str = "make run") -> Path:
    """Build the report of the complete run in ``run`` into ``out`` (default ``run/report``);
    raises :class:`InputError` if ``run`` is not a complete run (``how``: the command that
    makes it). Returns the index page."""
    run = Path(run)
    info = check_complete(run, how)
    out = Path(out) if out is not None else run / REPORT_DIR
    staging = out.parent / f".{out.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "notebooks").mkdir(parents=True)
    (staging / "figures").mkdir()
    (staging / "data").mkdir()

    figsrc = run / "figures"
    if figsrc.is_dir():
        for p in sorted(figsrc.iterdir()):
            if p.suffix in (".html", ".png", ".js") and p.is_file():
                shutil.copy2(p, staging / "figures" / p.name)
    if not (staging / "figures" / "plotly.min.js").is_file():  # a run without saved figures
        import plotly
        shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                     staging / "figures" / "plotly.min.js")
    for n in ("summary.csv", "comparison.csv"):
        if (run / n).is_file():
            shutil.copy2(run / n, staging / "data" / n)

    sources = sorted((run / "notebooks").glob("*.ipynb"))
    mathjax = None
    if sources:
        static = mathjax_source()
        if static is None:
            print(f"evsched report: note: {MATHJAX_HINT}")
        else:
            try:
                copy_mathjax(static, staging / "notebooks" / MATHJAX_DIR)
                mathjax = f"{MATHJAX_DIR}/MathJax.js"
            except OSError as exc:
                shutil.rmtree(staging / "notebooks" / MATHJAX_DIR, ignore_errors=True)
                print(f"evsched report: note: MathJax could not be copied from {static} ({exc}); "
                      "the report's formulas show as TeX source")
    import nbformat
    notebooks = [(p.stem, notebook_title(nbformat.read(p, as_version=4)) or p.stem) for p in sources]
    for p in sources:
        convert_notebook(p, staging / "notebooks" / f"{p.stem}.html", notebooks, mathjax)
    gallery, n_fig = _gallery(staging / "figures")
    (staging / "gallery.html").write_text(gallery, encoding="utf-8")
    (staging / "index.html").write_text(_index(run, info, notebooks, n_fig), encoding="utf-8")

    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    return out / "index.html"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m evsched.book",
                                 description="Build the static HTML report of a complete run (offline).")
    ap.add_argument("folder", nargs="?", help="run folder (default: the folder of --params)")
    ap.add_argument("--params", default=None,
                    help="parameter file whose run to report (default params/default.yaml → results/)")
    ap.add_argument("--out", default=None, help="report folder (default: <run>/report)")
    args = ap.parse_args(argv)
    try:
        run = run_folder(args.params, args.folder)
        t0 = time.perf_counter()
        if args.folder:
            how = "make run PARAMS=params/<name>.yaml"
        elif args.params and Path(args.params).resolve() != DEFAULT_PARAMS.resolve():
            how = f"make run PARAMS={args.params}"
        else:
            how = "make run"
        index = build_report(run, args.out, how)
    except InputError as exc:
        print(f"evsched report: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"evsched report: {_rel(index)} ({time.perf_counter() - t0:.1f} s); open it in a browser: "
          f"{index.resolve().as_uri()}")
    if not CHROMIUM.exists():
        print(f"note: {CHROMIUM_HINT}")


if __name__ == "__main__":
    main()
