"""A weighted ensemble of recipes (``recipes:``): one network per recipe (and per ``train.ensemble`` seed), all on
the same preprocessing, averaged by their weights. preset: auto's ensemble selection writes them (modalfuse/auto.py)."""
from __future__ import annotations

from .config import ModalityConfig, ModelConfig, RecipeConfig, TrainConfig
from .encoders import ENCODERS
from .errors import ConfigError
from .fusion import FUSIONS
from .options import validated

#: (modalities, model, train, share of the averaged prediction) of one network to train
Plan = tuple[list[ModalityConfig], ModelConfig, TrainConfig, float]


def _at(j: int, recipe: RecipeConfig) -> str:
    return f"recipes[{j}]" + (f" ({recipe.label})" if recipe.label else "")


def resolve_recipes(modalities: list[ModalityConfig], recipes: list[RecipeConfig]) -> list[RecipeConfig]:
    """``recipes`` with each encoder resolved against the modality's own (the fields a recipe sets replace it), so a
    saved model holds them whole; unknown modalities, encoders and fusions are config errors."""
    names, out = [m.name for m in modalities], []
    for j, recipe in enumerate(recipes):
        unknown = sorted(set(recipe.encoders) - set(names))
        if unknown:
            raise ConfigError(f"{_at(j, recipe)}.encoders: {unknown} name no modality; the modalities are {names}")
        FUSIONS.get(recipe.model.fusion.name)
        encoders = {}
        for m in modalities:
            enc = recipe.encoders.get(m.name)
            if enc is not None:
                encoders[m.name] = m.encoder.model_copy(update={k: getattr(enc, k) for k in enc.model_fields_set if getattr(enc, k) is not None})
                ENCODERS.get(encoders[m.name].name)
        out.append(recipe.model_copy(update={"encoders": encoders}))
    return out


def member_plans(modalities: list[ModalityConfig], model: ModelConfig, train: TrainConfig, recipes: list[RecipeConfig]) -> list[Plan]:
    """The networks to train: ``train.ensemble`` seeds of each (resolved) recipe, or of the one recipe of ``model``
    and ``train`` when there are no ``recipes``."""
    if not recipes:
        n = train.ensemble
        return [(modalities, model, train.model_copy(update={"seed": train.seed + i}), 1.0 / n) for i in range(n)]
    total, plans = sum(r.weight for r in recipes), []
    for j, recipe in enumerate(recipes):
        mods = [m.model_copy(update={"encoder": recipe.encoders[m.name]}) if m.name in recipe.encoders else m for m in modalities]
        cfg = validated(TrainConfig, {**train.model_dump(), **recipe.train}, "", at=f"{_at(j, recipe)}.train")
        plans += [(mods, recipe.model, cfg.model_copy(update={"seed": cfg.seed + i}), recipe.weight / total / cfg.ensemble)
                  for i in range(cfg.ensemble)]
    return plans


def check_heads(plans: list[Plan], task: str, n_outputs: int) -> None:
    """Members combine by the first one's head: every recipe's head must read outputs alike (e.g. multiclass and
    margin), checked before any training."""
    from .heads import HEADS, averages_alike, resolve_head

    heads = [HEADS.get(resolve_head(task, n_outputs, model.head)) for _, model, _, _ in plans]
    for head, (_, model, _, _) in zip(heads[1:], plans[1:]):
        if not averages_alike(head, heads[0]):
            raise ConfigError(f"recipes: a {head.__name__} (head: {model.head}) cannot be averaged with the first "
                              f"recipe's {heads[0].__name__} (head: {plans[0][1].head}); give every recipe the same kind of head")
