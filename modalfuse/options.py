"""Typed options for everything created by name (encoders, fusions, heads, kinds).

A component declares its options once, in its constructor's signature, with constraints as
``Annotated`` pydantic fields (``heads: PosInt = 4``); :func:`options_model` turns the signature
into a pydantic model, so a bad value is refused when the config is read, naming the key and the
allowed range, before any tensor is allocated. A component may instead set ``Options`` to a
pydantic model of its own. The JSON schema of every section falls out of these models.
"""
from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

#: common constrained types for option signatures
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
Widths = Annotated[tuple[PosInt, ...], Field(min_length=1)]
#: a layer width: at most 65,536, which keeps any one weight matrix far below what a machine holds
Width = Annotated[int, Field(ge=1, le=65536)]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


_CACHE: dict[tuple[type, tuple[str, ...]], type[BaseModel]] = {}


def options_model(cls: type, fixed: tuple[str, ...] = ()) -> type[BaseModel]:
    """The pydantic model of ``cls``'s user options: its ``Options`` or its constructor's keyword parameters.

    ``fixed`` names the parameters the library passes itself (dims, info, task), which users cannot set.
    """
    declared = cls.__dict__.get("Options")
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    key = (cls, tuple(sorted(fixed)))
    if key not in _CACHE:
        init = cls.__init__
        hints = typing.get_type_hints(init, include_extras=True)
        fields: dict[str, Any] = {}
        for name, param in inspect.signature(init).parameters.items():
            if name == "self" or name in fixed or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[name] = (hints.get(name, Any), default)
        _CACHE[key] = create_model(f"{cls.__name__}Options", __base__=_Options, **fields)
    return _CACHE[key]


def parse_options(model: type[BaseModel], options: dict[str, Any], where: str, label: str = "the component") -> BaseModel:
    """``options`` as an instance of ``model``, or a ConfigError with one line per problem."""
    from .errors import ConfigError

    if not isinstance(options, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(options).__name__}")
    try:
        return model.model_validate(options)
    except ValidationError as err:
        raise ConfigError("\n".join(describe_error(e, where, list(model.model_fields), label) for e in err.errors())) from None


def validate_options(model: type[BaseModel], options: dict[str, Any], where: str, label: str = "the component") -> dict[str, Any]:
    """``options`` checked against ``model``: the values to pass on (only those given, coerced to their types)."""
    checked = parse_options(model, options, where, label)
    return {k: getattr(checked, k) for k in options}


def describe_error(e: dict[str, Any], where: str, known: list[str], label: str = "the component") -> str:
    """One line per problem: the full key, what is wrong, the allowed values or range, and what was given."""
    import difflib

    key = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(e["loc"][-1]), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{where}: {label} has no option {key!r}{hint} (options: {', '.join(known) or 'none'})"
    if e["type"] == "missing":
        return f"{where}.{key}: required"
    return f"{where}.{key}: {e['msg']} (got {e.get('input')!r})"


def options_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an options model."""
    return model.model_json_schema()


def defaults(model: type[BaseModel]) -> dict[str, Optional[Any]]:
    """Each option's default (None where it has none)."""
    return {k: (None if f.is_required() else f.get_default(call_default_factory=True)) for k, f in model.model_fields.items()}
