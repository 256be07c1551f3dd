"""The report and the exploration notebook, on the tables of a real (smoke) grid."""

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pandas as pd
import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A tiny grid with two defenses, so the heatmap, defense table and query-efficiency figures exist."""
    root = tmp_path_factory.mktemp("report")
    config = root / "tiny.yaml"
    config.write_text("""
name: tiny
seeds: [0, 1]
datasets: [digits]
target: {model: mlp, epochs: 4}
evaluator: {epochs: 3}
defenses: [none, {round: {decimals: 1}}]
attacks: [{mi-face: {steps: 40}}, {hill-climb: {budget: 200}}, public-lookalike]
""")
    assert main(["run", str(config), "--results", str(root), "--no-progress"]) == 0
    return root / "tiny"


def test_report_has_figures_skips_and_the_defense_table(grid):
    html = (grid / "report.html").read_text()
    for name in ("gallery-digits", "leak-heatmap", "lift-heatmap", "query-efficiency", "privacy-utility"):
        assert (grid / "figures" / f"{name}.png").stat().st_size > 1000
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert "skipped: no DP-SGD target in the grid" in html  # absent data: one line, not an error
    assert "<script src=\"http" not in html  # self-contained: nothing fetched when opened
    table = (grid / "tables" / "defenses.csv").read_text()
    assert "round(decimals=1)" in table and "worst black-box" in table and "Δoracle_acc" in table
    assert "evaluator_mean_acc" in html and "± n/a" not in html  # the judge; no interval from 2 seeds, one note
    assert "2 seeds: no intervals; run with 3+ seeds for them" in html
    assert "What leaks:" in html and "beyond what the attacker had without inverting" in html  # the first screen
    assert "What stops it:" in html and (grid / "figures" / "headline-digits-mlp.png").stat().st_size > 1000


def test_the_report_opens_a_compact_gallery_and_links_the_full_one(grid):
    from PIL import Image

    html = (grid / "report.html").read_text()
    compact, full = (Image.open(grid / "figures" / f"{n}-digits.png") for n in ("gallery", "gallery-full"))
    assert max(compact.size) <= 1600 and compact.size[1] < full.size[1]  # 4 rows against every cell's
    assert 'href="figures/gallery-full-digits.png"' in html


def test_bench_report_rebuilds_and_refuses_a_folder_without_tables(grid, tmp_path, capsys):
    (grid / "report.html").unlink()
    assert main(["report", str(grid)]) == 0
    assert (grid / "report.html").exists()
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no grid tables" in capsys.readouterr().err


def test_explore_notebook_executes_headless(grid, tmp_path):
    from bench.runner import kernel_name

    out = tmp_path / "explore.ipynb"
    # papermill's own command line, in a fresh process, as a user runs it: a kernel client in the test
    # worker inherits whatever event loops and threads earlier tests left there
    code, log = bounded([sys.executable, "-m", "papermill", str(ROOT / "bench" / "notebooks" / "explore.ipynb"),
                         str(out), "-k", kernel_name(), "-p", "results_dir", str(grid), "--cwd", str(ROOT / "notebooks"),
                         "--start-timeout", "60", "--execution-timeout", "240", "--no-progress-bar"],
                        tmp_path / "papermill.log", seconds=420)
    assert code == 0, log
    assert "image/png" in out.read_text() and "What leaks:" in out.read_text()  # the cell, after the headline


def test_report_renders_in_a_headless_browser(grid, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine (make test installs Debian's chromium when it can)")
    page = tmp_path / "report.html"
    probe = ("<script>window.addEventListener('load', () => {"
             " const b = document.body, imgs = Array.from(document.images);"
             " const lead = Array.from(document.querySelectorAll('li')).find(e => e.textContent.includes('What leaks:'));"
             " b.setAttribute('data-widths', imgs.map(i => i.naturalWidth).join(','));"
             " b.setAttribute('data-shown', imgs.map(i => Math.ceil(i.getBoundingClientRect().width)).join(','));"
             " b.setAttribute('data-page', document.documentElement.clientWidth);"
             " b.setAttribute('data-lead', lead ? Math.ceil(lead.getBoundingClientRect().bottom) : -1);"
             "});</script>")
    page.write_text((grid / "report.html").read_text().replace("</body>", probe + "</body>"))
    dom, log = headless_dom(browser, page, tmp_path)
    read = {k: re.search(rf'data-{k}="([^"]*)"', dom) for k in ("widths", "shown", "page", "lead")}
    assert all(read.values()), log
    values = [int(w) for w in read["widths"].group(1).split(",") if w]
    assert len(values) >= 4 and all(v > 0 for v in values)  # every image loaded
    page_width = int(read["page"].group(1))
    assert all(int(w) <= page_width for w in read["shown"].group(1).split(",") if w)  # none wider than the page
    assert 0 < int(read["lead"].group(1)) <= 800  # the headline's first finding is on the first screen


def headless_dom(browser: str, page: Path, tmp_path: Path) -> tuple[str, str]:
    """The page's DOM after load, as headless chromium dumps it, and the end of chromium's log."""
    out = tmp_path / "dom.html"
    with out.open("w") as dom:
        code, log = bounded(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,800", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
             "--dump-dom", page.as_uri()],
            tmp_path / "chromium.log", seconds=120, stdout=dom)
    return out.read_text(), log


def bounded(command: list[str], log: Path, seconds: float, stdout: IO[str] | None = None) -> tuple[int, str]:
    """Run ``command`` to its end or for ``seconds`` at most; its exit code and the end of its log.
    The output goes to files, not pipes (a helper process that inherits a pipe keeps it open
    past a kill), and the command runs in its own session, killed whole: a hung child fails
    the test instead of stalling the run."""
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=stdout or err, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{Path(command[0]).name} did not finish within {seconds:g} s: {log.read_text()[-3000:]}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, log.read_text()[-3000:]


def test_the_defense_table_keeps_a_membership_metric_that_is_na_everywhere():
    from bench.report.defense_table import defense_table

    cells = pd.DataFrame({"cell_id": ["a", "b"], "dataset": "faces", "target": "mine", "defense": ["none", "round"],
                          "attack": "loss-threshold", "threat_model": "black-box", "seed": 0, "status": "done",
                          "kind": "membership", "baseline": False, "oracle_acc": [0.9, 0.8],
                          "defense_stages": ["none", "inference"]})
    rows = [{"cell_id": c, "dataset": "faces", "target": "mine", "defense": d, "attack": "loss-threshold",
             "threat_model": "black-box", "seed": 0, "target_class": "all", "metric": m, "value": v}
            for c, d in (("a", "none"), ("b", "round")) for m, v in (("auc", 0.6), ("tpr@1%fpr", float("nan")))]
    table = defense_table(cells, pd.DataFrame(rows))  # the challenge set was too small for tpr@1%fpr
    assert set(table["metric"]) == {"Δoracle_acc", "auc", "Δauc"}


def test_privacy_utility_plots_each_seeds_best_attack_per_defense_without_the_baseline():
    from bench.report.figures import privacy_utility

    cells, rows = [], []
    for seed in range(3):
        for defense, acc, lift, tpr in (("none", 0.9, 0.5, 0.2), ("round", 0.88, 0.3, 0.1), ("dp", 0.6, -0.2, 0.01)):
            for attack, kind, metric, value in (("look", "inversion", "lift", 0.0), ("inv", "inversion", "lift", lift),
                                                ("weak", "inversion", "lift", lift - 0.3),
                                                ("mia", "membership", "tpr@1%fpr", tpr)):
                cid = f"{attack}-{defense}-{seed}"
                cells.append({"cell_id": cid, "dataset": "faces", "target": "cnn", "attack": attack, "defense": defense,
                              "seed": seed, "kind": kind, "baseline": attack == "look", "oracle_acc": acc})
                rows.append({"cell_id": cid, "dataset": "faces", "target": "cnn", "attack": attack, "defense": defense,
                             "seed": seed, "target_class": "all", "metric": metric, "value": value + 0.01 * seed})
    fig, reason = privacy_utility(pd.DataFrame(cells), pd.DataFrame(rows))
    assert reason is None
    inversion, membership = fig.axes[:2]
    points = [c.get_offsets() for c in inversion.collections if len(c.get_offsets())]
    # the best attack per seed ('inv'), never the baseline's 0 (which would win under dp), nor a mean with 'weak'
    assert sorted(map(tuple, points[0].round(2).tolist())) == [(0.6, -0.19), (0.88, 0.31), (0.9, 0.51)]
    assert "membership" in membership.get_ylabel() and "honest user" in membership.get_xlabel()


def test_the_compact_gallery_shows_the_baseline_and_the_strongest_undefended_attacks_in_order(tmp_path):
    import numpy as np

    from bench.report.figures import compact_gallery
    from bench.results import ResultsDir

    references = ResultsDir(tmp_path).references("faces")
    references.parent.mkdir(parents=True)
    np.savez_compressed(references, images=np.zeros((2, 1, 4, 4)), names=np.array(["ann", "bob"]))
    cells = []
    for seed in (0, 1):
        for attack, defense, acc in (("look", "none", 0.0), ("a", "none", 0.2), ("b", "none", 0.9), ("c", "none", 0.5),
                                     ("d", "none", 0.4 + 0.2 * seed), ("e", "none", 0.1), ("b", "round", 1.0)):
            cid = f"{attack}-{defense}-{seed}"
            (tmp_path / "cells" / cid).mkdir(parents=True)
            np.savez_compressed(tmp_path / "cells" / cid / "reconstructions.npz", reconstructions=np.zeros((2, 1, 4, 4)))
            cells.append({"cell_id": cid, "dataset": "faces", "target": "cnn", "attack": attack, "defense": defense,
                          "seed": seed, "status": "done", "kind": "inversion", "baseline": attack == "look",
                          "acc@1:open": acc, "acc@1": 1.0})
    fig, reason = compact_gallery(tmp_path, pd.DataFrame(cells), "faces", strongest=3)
    assert reason is None
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    # d's mean over seeds (0.5) ties c's; the stable order keeps c, then d: a, e and the defended b are left out
    assert labels == ["private", "look\nnone", "b\nnone", "c\nnone", "d\nnone"]
    assert "the 3 strongest attacks" in fig._suptitle.get_text()


def test_privacy_utility_reads_lift_where_the_open_set_judge_is_too_weak():
    from bench.report.figures import privacy_utility

    cells, rows = [], []
    for seed in range(3):
        for defense, acc, lift in (("none", 0.9, 0.5), ("round", 0.88, 0.3)):
            cid = f"inv-{defense}-{seed}"
            cells.append({"cell_id": cid, "dataset": "yale", "target": "cnn", "attack": "inv", "defense": defense,
                          "seed": seed, "kind": "inversion", "baseline": False, "oracle_acc": acc,
                          "open_judge_acc": 0.54, "open_judge_far": 0.34})
            rows += [{"cell_id": cid, "dataset": "yale", "target": "cnn", "attack": "inv", "defense": defense,
                      "seed": seed, "target_class": "all", "metric": metric, "value": value}
                     for metric, value in (("lift", lift), ("lift:open", -0.2))]
    fig, _ = privacy_utility(pd.DataFrame(cells), pd.DataFrame(rows))
    (ax,) = fig.axes[:1]
    assert ax.get_title() == "yale (lift)"
    points = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    assert sorted(map(tuple, points[0].round(2).tolist())) == [(0.88, 0.3), (0.9, 0.5)]
