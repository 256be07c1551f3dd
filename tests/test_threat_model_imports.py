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
    assert "2 kept, 0 broken" in result.stdout


def lint_with(tmp_path: Path, module: str, source: str) -> subprocess.CompletedProcess:
    """Lint a copy of the package with one more module, e.g. ``attacks/cheat.py``."""
    shutil.copytree(ROOT / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "bench" / module).write_text(source)
    return lint(tmp_path)


def test_a_cheating_attack_breaks_the_contract(tmp_path):
    result = lint_with(tmp_path, "attacks/cheat.py", "from bench.metrics.identification import top_k_hits\n")
    assert result.returncode != 0
    assert "bench.attacks.cheat -> bench.metrics.identification" in result.stdout


def test_the_training_loop_importing_a_defense_breaks_the_contract(tmp_path):
    result = lint_with(tmp_path, "models/shortcut.py", "from bench.defenses.training import DPSGD\n")
    assert result.returncode != 0
    assert "bench.models.shortcut -> bench.defenses.training" in result.stdout


def test_no_core_module_names_a_plugin():
    """Core code knows plugins only through the registry and their declared traits (``stage``,
    ``baseline``, ``incompatible_with`` ...), never by name. The exceptions: the reference defense
    ``none``, threat-model names that plugins share, and the measurements of ``bench/perf.py``."""
    import ast

    import bench.attacks  # noqa: F401
    import bench.data  # noqa: F401
    import bench.defenses  # noqa: F401
    from bench.oracle import ThreatModel
    from bench.registry import REGISTRIES

    plugins = [registry for kind, registry in REGISTRIES.items() if kind != "metrics"]  # the core produces metrics
    names = {n for registry in plugins for n in registry.names()} - {"none"} - {t.value for t in ThreatModel}
    found = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        rel = path.relative_to(ROOT / "bench")
        if rel.parts[0] in ("attacks", "defenses", "data") or rel.name == "perf.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{rel}:{node.lineno} names '{node.value}'")
    assert not found, found
