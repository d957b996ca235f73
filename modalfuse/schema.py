"""The JSON schema of a config, with each component's options schema taken from its registry.

``Config.model_json_schema()`` describes the sections; encoder, fusion and head ``options`` are
free mappings there, so each registry entry adds an ``if name == X then options: <X's schema>``
clause (JSON Schema draft 7+). Plugins' entries appear once their package is installed.
"""
from __future__ import annotations

from typing import Any

from .registry import Registry


def registries() -> dict[str, Registry]:
    """Every registry by its listing name."""
    from .encoders import ENCODERS
    from .fusion import FUSIONS
    from .heads import HEADS
    from .kinds import KINDS

    return {"encoders": ENCODERS, "fusions": FUSIONS, "heads": HEADS, "kinds": KINDS}


def _by_name(registry: Registry, name_key: str, options_key: str) -> list[dict[str, Any]]:
    return [
        {"if": {"properties": {name_key: {"const": name}}, "required": [name_key]},
         "then": {"properties": {options_key: schema}}}
        for name, schema in registry.schema().items()
    ]


def config_schema() -> dict[str, Any]:
    """The whole config's JSON schema."""
    from .config import Config

    regs = registries()
    schema = Config.model_json_schema()
    defs = schema["$defs"]
    defs["EncoderConfig"]["allOf"] = _by_name(regs["encoders"], "name", "options")
    defs["FusionConfig"]["allOf"] = _by_name(regs["fusions"], "name", "options")
    defs["ModelConfig"]["allOf"] = _by_name(regs["heads"], "head", "head_options")
    from .augment import AUGMENTS

    defs["ModalityConfig"]["allOf"] = _by_name(regs["kinds"], "kind", "options") + _by_name(AUGMENTS, "kind", "augment")
    for d, reg in (("EncoderConfig", "encoders"), ("FusionConfig", "fusions")):
        defs[d]["properties"]["name"]["examples"] = regs[reg].names()
    defs["ModelConfig"]["properties"]["head"]["examples"] = ["default", *regs["heads"].names()]
    return schema
