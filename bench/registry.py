"""Plugin registries: one small generic :class:`Registry` per kind of plugin.

Plugins arrive three ways: built-ins register with a decorator when their package is
imported, installed packages declare ``importlib.metadata`` entry points (groups
``bench.attacks``, ``bench.defenses``, ``bench.datasets``, ``bench.metrics``), and ``--plugin FILE`` imports a
file the user names. A plugin that fails to import or register is an error naming it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from bench.errors import ConfigError, PluginError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> class for one kind of plugin, filled lazily from built-ins and entry points."""

    def __init__(self, kind: str, group: str, builtin_package: str, admits: Callable[[Any], str | None] | None = None
                 ) -> None:
        self.kind = kind
        self.admits = admits  # why a class may not register here (None: it may)
        self.group = group
        self.builtin_package = builtin_package
        self._classes: dict[str, T] = {}
        self._origins: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@attack("mi-face")``."""

        def decorate(cls: T) -> T:
            refusal = self.admits(cls) if self.admits is not None else None
            if refusal is not None:
                raise PluginError(f"{self.kind} '{name}' ({_origin(cls)}): {refusal}")
            self.add(name, cls)
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return decorate

    def add(self, name: str, obj: T, origin: Any = None) -> None:
        """Register ``obj`` as ``name``; ``origin`` (default ``obj``) is what defined it: the same
        origin may register again (a module imported twice), another one may not."""
        origin = obj if origin is None else origin
        existing = self._origins.get(name)
        if existing is not None and _identity(existing) != _identity(origin):
            raise PluginError(f"{self.kind} '{name}' is registered twice: by {_origin(existing)} and by {_origin(origin)}")
        self._classes[name] = obj
        self._origins[name] = origin

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name lists the valid ones."""
        self._ensure_loaded()
        if name not in self._classes:
            hint = difflib.get_close_matches(name, self._classes, n=1)
            did_you_mean = f"did you mean '{hint[0]}'? " if hint else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}': {did_you_mean}available: {', '.join(self.names())}"
            )
        return self._classes[name]

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._classes)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self.get(n)) for n in self.names()]

    def values(self) -> list[T]:
        """Everything registered, in the order it was registered."""
        self._ensure_loaded()
        return list(self._classes.values())

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        importlib.import_module(self.builtin_package)
        for ep in importlib.metadata.entry_points(group=self.group):
            before = set(self._classes)
            try:
                obj = ep.load()
            except Exception as exc:  # any import failure of a third-party plugin
                dist = getattr(ep.dist, "name", "?")
                raise PluginError(
                    f"{self.kind} plugin '{ep.name}' ({ep.value}, from package {dist}) failed to import: {exc!r}"
                ) from exc
            if ep.name not in self._classes and obj not in self._classes.values():
                if isinstance(obj, type):
                    self.register(ep.name)(obj)  # entry point names a class without the decorator
                elif set(self._classes) == before:
                    raise PluginError(
                        f"{self.kind} plugin '{ep.name}' ({ep.value}) registered nothing: "
                        f"point the entry point at a class decorated with @{self.kind}(...)"
                    )


def _attack_family(cls: type) -> str | None:
    if getattr(cls, "kind", None) in ("inversion", "membership"):
        return None
    return ("an attack subclasses one family: InversionAttack (bench.attacks.base) or MembershipAttack "
            "(bench.attacks.membership)")


ATTACKS: Registry[type] = Registry("attack", "bench.attacks", "bench.attacks", _attack_family)
DEFENSES: Registry[type] = Registry("defense", "bench.defenses", "bench.defenses")
DATASETS: Registry[type] = Registry("dataset", "bench.datasets", "bench.data")
METRICS: Registry[Any] = Registry("metric", "bench.metrics", "bench.metrics")  # bench.metrics.base.Metric
REGISTRIES = {"attacks": ATTACKS, "defenses": DEFENSES, "datasets": DATASETS, "metrics": METRICS}

attack = ATTACKS.register
defense = DEFENSES.register
dataset = DATASETS.register


_PLUGIN_FILES: dict[str, str] = {}  # module name -> path of each --plugin file loaded in this process


def plugin_file(cls: type) -> str | None:
    """The ``--plugin`` file that defined ``cls`` (None for built-ins and installed packages):
    the attacker's process loads it to rebuild the attack."""
    return _PLUGIN_FILES.get(cls.__module__)


def load_registries() -> None:
    """Import the built-ins and every entry point, as a first lookup would."""
    for registry in REGISTRIES.values():
        registry._ensure_loaded()


def load_plugin_files(paths: Iterable[str | Path]) -> None:
    """Import each ``--plugin FILE``; it must register at least one plugin."""
    for path in paths:
        load_plugin_file(path)


def load_plugin_file(path: str | Path) -> None:
    path = Path(path).resolve()
    if not path.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    load_registries()
    module_name = "bench_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
    if module_name in sys.modules:
        return
    counts = {kind: len(r.names()) for kind, r in REGISTRIES.items()}
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except PluginError:
        del sys.modules[module_name]
        raise
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"plugin file {path} failed to import: {exc!r}") from exc
    if all(len(r.names()) == counts[kind] for kind, r in REGISTRIES.items()):
        del sys.modules[module_name]
        raise PluginError(
            f"plugin file {path} registered no attack, defense, dataset or metric (decorate a class with "
            "@attack(...), @defense(...) or @dataset(...) from bench.registry, or a function with "
            "@metric(...) from bench.metrics)"
        )
    _PLUGIN_FILES[module_name] = str(path)


def _identity(origin: Any) -> Any:
    """A class or function is the same origin when its qualified name is; a declaration, when equal."""
    return getattr(origin, "__qualname__", None) or origin


def _origin(origin: Any) -> str:
    if not hasattr(origin, "__qualname__"):
        return repr(origin)
    module = sys.modules.get(origin.__module__)
    where = getattr(module, "__file__", None) or origin.__module__
    return f"{origin.__qualname__} in {where}"
