"""Bring your own target: a model the user trained, rebuilt by their code and filled with their
weights — never by unpickling code from a file.

A saved model is two things: a **factory** (``my_pkg.models:build`` or ``path/to/file.py:build``,
called with no arguments) that builds the architecture, and a **state dict** loaded with
``torch.load(..., weights_only=True)``, which refuses anything but tensors and plain
containers. ``torch.export`` programs were the other candidate and were rejected:
``torch.export.load`` unpickles and falls back to ``weights_only=False`` when the safe load
fails (torch 2.13, ``torch/_export/serde/serialize.py``), so a crafted file runs code.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from bench.errors import ConfigError
from bench.models.field import FIELD_ARCHITECTURES, from_published


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """The callable ``module:name`` or ``file.py:name`` names (a file path is imported as a module)."""
    module_part, sep, name = spec.rpartition(":")
    if not sep or not module_part or not name:
        raise ConfigError(f"target factory '{spec}': expected 'package.module:callable' or 'path/to/file.py:callable'")
    if module_part.endswith(".py"):
        path = Path(module_part).resolve()
        if not path.is_file():
            raise ConfigError(f"target factory '{spec}': {path} is not a file")
        module_name = "bench_target_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
        module = sys.modules.get(module_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(module_name, path)
            assert loader is not None and loader.loader is not None
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            sys.modules[module_name] = module
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise ConfigError(f"target factory '{spec}': cannot import '{module_part}' ({exc}); install it or put it "
                              "on PYTHONPATH, or name a file: 'path/to/file.py:callable'") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigError(f"target factory '{spec}': '{module_part}' has no callable '{name}'")
    return factory


def load_saved(factory: str, model: str, weights: str | Path, shape: tuple[int, int, int], num_classes: int
               ) -> nn.Module:
    """The user's model, in eval mode: built by ``factory`` (or, for a checkpoint of the field's
    ``model``, by Sieve for ``shape`` and ``num_classes``, its published keys renamed), its
    state dict loaded safely and strictly."""
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"target weights '{path}' is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickled module, a corrupt file: refuse, never fall back to unpickling
        raise ConfigError(f"target weights '{path}' is not a state dict torch.load(weights_only=True) accepts: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"target weights '{path}' holds a {type(state).__name__}, not a state dict "
                          "(save it with torch.save(model.state_dict(), path))")
    if model:
        net: nn.Module = FIELD_ARCHITECTURES[model](shape, num_classes)
        state, built_by = from_published(state, model), f"Sieve's {model} for {num_classes} identities"
    else:
        net, built_by = load_factory(factory)(), f"the model '{factory}' builds"
        if not isinstance(net, nn.Module):
            raise ConfigError(f"target factory '{factory}' returned a {type(net).__name__}, not a torch.nn.Module")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"target weights '{path}' do not fit {built_by}: {str(exc).splitlines()[0]} …") from exc
    return net.eval()


@torch.no_grad()
def check_fits(model: nn.Module, shape: tuple[int, int, int], num_classes: int, where: str) -> None:
    """The model takes the dataset's N×C×H×W images and returns one logit per private identity."""
    try:
        out = model.eval()(torch.zeros(2, *shape))
    except Exception as exc:
        raise ConfigError(f"{where}: the model does not accept the dataset's images of shape (N, "
                          f"{', '.join(map(str, shape))}): {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{where}: the model returns {got} for 2 images; the dataset has {num_classes} private "
                          f"identities, so (2, {num_classes}) logits are needed (one per class, in the order of "
                          "the dataset's 'classes' file)")


def file_digest(path: str | Path) -> str:
    """The weights' content hash: a changed file is another target (another job and cell ids, so
    a retrained model saved over the old file is audited again, never skipped as complete)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
