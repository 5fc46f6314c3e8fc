"""Helpers to write notebooks from Python (clean: no outputs, 'evsched' kernel, tagged parameters cell)."""
from __future__ import annotations

import nbformat as nbf


def build(cells: list[tuple[str, str]], path) -> None:
    """cells: list of ("md" | "code" | "params", source). Writes an output-free notebook."""
    nb = nbf.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "evsched", "display_name": "Python (evsched)", "language": "python"},
                   "language_info": {"name": "python"}}
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbf.v4.new_markdown_cell(src))
        else:
            c = nbf.v4.new_code_cell(src)
            if kind == "params":
                c.metadata["tags"] = ["parameters"]
            nb.cells.append(c)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbf.write(nb, str(path))
