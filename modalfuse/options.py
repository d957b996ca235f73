"""Typed options for everything created by name (encoders, fusions, heads, kinds).

A component declares its options once, in its constructor's signature, with constraints as
``Annotated`` pydantic fields (``heads: PosInt = 4``); :func:`options_model` turns the signature
into a pydantic model, so a bad value is refused when the config is read, naming the key and the
allowed range, before any tensor is allocated. A component may instead set ``Options`` to a
pydantic model of its own. The JSON schema of every section falls out of these models.
"""
from __future__ import annotations

import difflib
import inspect
import re
import typing
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import ConfigError

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


# -- config errors: pydantic's report as one line per problem, naming the full key --------------------

def as_value_error(fn, *args, key: Optional[str] = None, rename: tuple[str, str] = ("", "")):
    """Call a registry check; its ConfigError becomes the ValueError pydantic places under the config key.

    Messages start with the key relative to the model being validated (``options.heads: ...``), which
    ``format_validation_error`` joins to the full path (``model.fusion.options.heads: ...``).
    """
    try:
        return fn(*args)
    except ConfigError as err:
        lines = []
        for text in str(err).splitlines():
            if rename[0] and text.startswith(rename[0] + "."):
                text = rename[1] + text[len(rename[0]):]
            lines.append(text if key is None or _RELATIVE_KEY.match(text) else f"{key}: {text}")
        raise ValueError("\n".join(lines)) from None


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the pydantic model found by walking ``loc`` (best effort)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                current = None
                continue
            current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


_RELATIVE_KEY = re.compile(r"^((?:encoder|options|head|head_options|name|kind)(?:\.[\w\[\]]+)*): ")


def _name_of(e: dict[str, Any], part: Any) -> str:
    """A list index in a key path, replaced by the item's name where the failing item has one (modalities.photo)."""
    if isinstance(part, int) and isinstance(e.get("input"), dict) and isinstance(e["input"].get("name"), str) and e["loc"][-1] == part:
        return e["input"]["name"]
    return str(part)


def format_validation_error(err: ValidationError, model: type[BaseModel] = None, source: str = "config", at: Optional[str] = None) -> str:
    """Turn pydantic's report into lines of 'source: key.path: problem (did you mean ...)'.

    ``at`` is the key path of the validated object inside a larger config (``modalities.photo``), prefixed to every key.
    """
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        named = ([at] if at else []) + [_name_of(e, p) for p in loc]
        head = f"{source}: " if source else ""
        key = ".".join(named) or "(top level)"
        msg = e["msg"]
        if e["type"] == "value_error":
            for text in msg.removeprefix("Value error, ").splitlines():
                relative = _RELATIVE_KEY.match(text)
                if relative:  # a registry check names the key below loc: join them into one path
                    lines.append(f"{head}{'.'.join([*named, relative.group(1)])}: {text[relative.end():]}")
                else:
                    lines.append(f"{head}{key}: {text}")
            continue
        if e["type"] == "extra_forbidden" and model is not None:
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            msg = f"unknown key {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            if known:
                msg += f" (allowed: {', '.join(known)})"
        lines.append(f"{head}{key}: {msg}")
    return "\n".join(lines)


def validated(model_cls: type[BaseModel], value: Any, source: str, at: Optional[str] = None) -> Any:
    """Accept a config object or a plain dict; dict errors become ConfigError with "did you mean"."""
    if isinstance(value, model_cls):
        return value
    try:
        return model_cls.model_validate(value)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, model_cls, source, at)) from None


def item_key(item: Any, i: int) -> str:
    """``modalities.<name>`` where the item names itself, else ``modalities[i]``."""
    name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
    return f"modalities.{name}" if isinstance(name, str) else f"modalities[{i}]"
