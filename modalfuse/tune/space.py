"""The ``search:`` section of a config: parameter spaces over any config key, the search algorithm and ASHA.

```yaml
search:
  metric: val_accuracy        # any per-epoch validation metric (val_loss, val_accuracy, ...)
  mode: max
  num_samples: 8              # trials (random / optuna); grid: repeats of the whole grid
  algorithm: random           # random | grid | optuna (Optuna's TPE sampler)
  scheduler: {name: asha, grace_period: 2, reduction_factor: 2}   # or none
  cpus_per_trial: 1
  space:
    model.fusion.name: {choice: [concat, late, sum]}
    train.lr: {loguniform: [0.0003, 0.01]}
    model.dropout: {uniform: [0.0, 0.3]}
    model.head_hidden: {randint: [0, 256]}           # both ends included
    modalities.*.encoder.dim: {choice: [32, 64]}      # every modality (or modalities.NAME.…)
```
Keys are dotted paths into the config; ``modalities.NAME`` / ``modalities.*`` reach the modality entries, those
of built-in datasets included.
"""
from __future__ import annotations

import copy
from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from ..config import _Strict

KINDS = ("choice", "grid", "uniform", "loguniform", "randint")


class SchedulerConfig(_Strict):
    name: Literal["asha", "none"] = "asha"
    grace_period: int = Field(2, gt=0, description="Epochs every trial runs before ASHA may stop it.")
    reduction_factor: float = Field(2.0, gt=1, description="ASHA keeps 1 / reduction_factor of the trials at each rung.")


class SearchConfig(_Strict):
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    num_samples: int = Field(8, gt=0)
    algorithm: Literal["random", "grid", "optuna"] = "random"
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    cpus_per_trial: float = Field(1, gt=0, description="CPUs Ray reserves per trial (and torch threads in it, rounded).")
    max_concurrent: Optional[int] = Field(None, gt=0, description="Trials at once; unset: as many as the CPUs allow.")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Validation share for trials whose config has none (trials need one).")
    seed: int = 0
    space: dict[str, dict[str, Any]] = Field(..., min_length=1)

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for key, spec in space.items():
            if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
                raise ValueError(f"{key}: expected one of {{{', '.join(k + ': ...' for k in KINDS)}}}, got {spec!r}")
            kind, values = next(iter(spec.items()))
            if not isinstance(values, list) or not values:
                raise ValueError(f"{key}.{kind}: expected a non-empty list")
            if kind in ("uniform", "loguniform", "randint") and (len(values) != 2 or not values[0] < values[1]):
                raise ValueError(f"{key}.{kind}: expected [low, high] with low < high, got {values}")
            if kind == "loguniform" and values[0] <= 0:
                raise ValueError(f"{key}.loguniform: bounds must be above 0, got {values}")
        return space

    def ray_space(self) -> dict[str, Any]:
        """Ray Tune's param_space (grid: every list becomes a grid_search; continuous ranges are refused)."""
        from ray import tune

        out: dict[str, Any] = {}
        for key, spec in self.space.items():
            kind, values = next(iter(spec.items()))
            if self.algorithm == "grid" or kind == "grid":
                if kind not in ("choice", "grid"):
                    raise ValueError(f"search.space.{key}: a grid needs a list of values (choice or grid), not {kind}")
                out[key] = tune.grid_search(values)
            elif kind == "choice":
                out[key] = tune.choice(values)
            elif kind == "uniform":
                out[key] = tune.uniform(*values)
            elif kind == "loguniform":
                out[key] = tune.loguniform(*values)
            else:
                out[key] = tune.randint(int(values[0]), int(values[1]) + 1)
        return out


def apply_params(raw: dict[str, Any], params: dict[str, Any], modalities: Optional[list[dict]] = None) -> tuple[dict, Optional[list[dict]]]:
    """``raw`` (a config as a plain dict) and ``modalities`` (dicts) with the dotted ``params`` set; copies."""
    raw = copy.deepcopy(raw)
    mods = copy.deepcopy(modalities if modalities is not None else raw.get("modalities") or None)
    for key, value in params.items():
        parts = key.split(".")
        if parts[0] == "modalities":
            if not mods or len(parts) < 3:
                raise ValueError(f"search.space.{key}: expected modalities.NAME.key (or modalities.*.key) and modalities to set it on")
            targets = [m for m in mods if parts[1] in ("*", m.get("name"))]
            if not targets:
                raise ValueError(f"search.space.{key}: no modality named {parts[1]!r} (have {[m.get('name') for m in mods]})")
            for m in targets:
                _set(m, parts[2:], value)
        else:
            _set(raw, parts, value)
    if mods is not None and raw.get("modalities"):
        raw["modalities"] = mods
    return raw, mods


def _set(node: dict, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
