"""Name → class registries, so every encoder, fusion, head and kind is created by name from config.

Each entry's options are typed (``modalfuse.options``): ``validate`` checks a config's options
when the config is read, ``create`` builds the component, and ``schema`` gives the JSON schema of
every entry's options. Entries come from this package or from other installed packages through the
``modalfuse.plugins`` entry-point group (see ``load_plugins``).
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Optional, TypeVar

from .errors import ConfigError
from .options import options_model, validate_options

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; each entry carries a one-line description for listings."""

    def __init__(self, kind: str, fixed: tuple[str, ...] = ()) -> None:
        self.kind = kind
        #: constructor parameters the library passes itself, never user options
        self.fixed = fixed
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and interactive sessions that register throwaway components)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name → first line of the class docstring (or of its module's, for a class without one)."""
        import sys

        out = {}
        for n in self.names():
            cls = self._entries[n]
            doc = cls.__dict__.get("__doc__") or getattr(sys.modules.get(cls.__module__), "__doc__", None) or ""
            out[n] = (doc.strip().splitlines() or [""])[0]
        return out

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            load_plugins()
        return name in self._entries

    def options(self, name: str):
        """The pydantic model of entry ``name``'s options."""
        return options_model(self.get(name), self.fixed)

    def validate(self, name: str, options: dict[str, Any], where: Optional[str]) -> dict[str, Any]:
        """``options`` checked against entry ``name``'s options model (errors name ``where.options.<key>`` and the constraint)."""
        return validate_options(self.options(name), options, f"{where}.options" if where else "options", f"{self.kind} {name!r}")

    def create(self, name: str, options: dict, where: str, **fixed):
        """Instantiate ``name`` with ``fixed`` arguments plus user ``options``, validated first."""
        checked = self.validate(name, options, where)
        return self.get(name)(**fixed, **checked)

    def schema(self) -> dict[str, Any]:
        """Name → JSON schema of its options."""
        return {n: self.options(n).model_json_schema() for n in self.names()}


_PLUGINS_LOADED = False
PLUGIN_GROUP = "modalfuse.plugins"


def load_plugins(force: bool = False) -> list[str]:
    """Import every ``modalfuse.plugins`` entry point once; importing a plugin registers its entries.

    An entry point names a module (or an object in one); a plugin that fails to import is reported
    with its name instead of breaking every registry lookup.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED and not force:
        return []
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            obj = ep.load()
        except Exception as err:  # a broken plugin names itself
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed to import: {err}") from None
        if callable(obj) and not isinstance(obj, type):
            obj()  # a register() function
        loaded.append(ep.name)
    return loaded
