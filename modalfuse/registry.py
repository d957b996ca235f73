"""A tiny name → class registry, so every encoder and fusion is created by name from config."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; each entry carries a one-line description for listings."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def get(self, name: str) -> type[T]:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name → first line of the class docstring."""
        return {n: (self._entries[n].__doc__ or "").strip().splitlines()[0] for n in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def create(self, name: str, options: dict, where: str, **fixed):
        """Instantiate ``name`` with ``fixed`` arguments plus user ``options``, refusing unknown options."""
        import inspect

        cls = self.get(name)
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self" and p not in fixed]
        for key in options:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{where}.options: {self.kind} {name!r} has no option {key!r}{hint} (options: {', '.join(allowed) or 'none'})")
        return cls(**fixed, **options)
