"""Which code and packages produced a result: recorded in every manifest and table."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGES = (
    "sieve-bench", "torch", "numpy", "scikit-learn", "scikit-image", "pandas", "pyarrow",
    "papermill", "ipykernel", "seaborn", "matplotlib", "tqdm", "pyyaml", "pillow",
)


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the source tree (``-dirty`` when changed), else the package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "sieve-bench " + importlib.metadata.version("sieve-bench")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
