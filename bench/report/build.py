"""The report of a grid: ``notebooks/report.ipynb`` executed by papermill on the grid's
tables, then exported to a self-contained ``report.html`` (figures embedded)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from IPython.display import Image, Markdown, display
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from bench.execute import execute_notebook
from bench.files import atomic_write_bytes


def emit(drawn: tuple[Figure | None, str | None], results_dir: str | Path, name: str, link: str = "") -> None:
    """In the report notebook: save a figure as ``figures/<name>.png`` and show it — or, given a
    ``link`` text, show only a link to the file (a figure too large for the page) — or say why it
    is skipped."""
    fig, reason = drawn
    if fig is None:
        print(f"[{name}] skipped: {reason}")
        return
    path = Path(results_dir) / "figures" / f"{name}.png"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)
    if link:
        display(Markdown(f"[{link}](figures/{name}.png)"))
    else:
        display(Image(filename=str(path)))


def build_report(results_dir: str | Path, kernel: str) -> Path:
    """Execute the report notebook into ``<results_dir>/report.ipynb`` and export ``report.html``."""
    import nbformat
    from nbconvert import HTMLExporter

    root = Path(results_dir).resolve()
    out = root / "report.ipynb"
    execute_notebook("report", out, kernel, {"results_dir": str(root)}, log=root / "report.log")
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    html, _ = exporter.from_notebook_node(nbformat.read(out, as_version=4))
    atomic_write_bytes(root / "report.html", strip_remote_scripts(html).encode())
    return root / "report.html"


def strip_remote_scripts(html: str) -> str:
    """Drop the template's CDN scripts (require.js, MathJax): the report uses neither, and a
    self-contained page must open offline without waiting on the network."""
    return re.sub(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", "", html)
