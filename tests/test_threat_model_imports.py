"""The threat model is in the imports: an attack that reaches past the oracle is caught."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = str(Path(sys.executable).parent / "lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--config", str(cwd / "pyproject.toml")], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_attacks_import_nothing_from_models_metrics_or_data():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_cheating_attack_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "bench" / "attacks" / "cheat.py").write_text("from bench.metrics.identification import top_k_hits\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "bench.attacks.cheat -> bench.metrics.identification" in result.stdout
