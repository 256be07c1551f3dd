"""Which code and packages produced a result: recorded in every manifest, record and table.

``code_version`` is for people (``git describe``); ``code_fingerprint`` is for machines: a hash
of the source files themselves, so two different uncommitted states never look alike. Cells
and cached artifacts carry the fingerprint of the code that determines them, and resume
re-runs what another code version wrote.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGES = (
    "sieve-bench", "torch", "numpy", "scikit-learn", "scikit-image", "pandas", "pyarrow",
    "papermill", "ipykernel", "seaborn", "matplotlib", "tqdm", "pyyaml", "pillow", "opacus",
)
PACKAGE_ROOT = Path(__file__).resolve().parent
# The code that determines a trained target or evaluator: its cache key carries their fingerprint.
ARTIFACT_SOURCES = ("models", "defenses", "data", "judges.py", "seeds.py")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the source tree (``-dirty`` when changed), else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=PACKAGE_ROOT.parent, capture_output=True,
            text=True, timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "sieve-bench " + importlib.metadata.version("sieve-bench")


@lru_cache(maxsize=None)
def code_fingerprint(*parts: str) -> str:
    """Hash of the package's Python sources and notebooks (or only of ``parts``, paths under ``bench/``);
    shipped grid configs are left out: a config changes which cells exist, not what a cell computes."""
    roots = [PACKAGE_ROOT / p for p in parts] if parts else [PACKAGE_ROOT]
    files = sorted(f for root in roots for f in ([root] if root.is_file() else root.rglob("*"))
                   if f.suffix in (".py", ".ipynb") and "__pycache__" not in f.parts)
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(PACKAGE_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def required_fingerprint(keep_stale: bool) -> str | None:
    """The fingerprint a complete cell must carry to be skipped on resume (None: any, with ``--keep-stale``)."""
    return None if keep_stale else code_fingerprint()


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
