"""``modalfuse train CONFIG --resume RUN_DIR``: the run folder checked against the config, and how to resume in words."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import ConfigError

#: settings that may change between the interrupted run and its resumption without changing its results
FREE = {("train", "progress"), ("train", "workers"), ("train", "checkpoint_every_steps"), ("run_dir",)}


def resume_folder(path: str, resolved) -> Path:
    """``path`` as a run folder whose saved config matches ``resolved`` (the one about to be used)."""
    run = Path(path)
    saved_path = run / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"--resume: {run} is not a run folder (no config.yaml in it)")
    try:
        saved = yaml.safe_load(saved_path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--resume: cannot read {saved_path} ({err})") from None
    try:  # settings added to the library since the run was saved take their defaults, as the config being used does
        from ..config import parse_config

        saved = json.loads(parse_config(saved, str(saved_path)).model_dump_json())
    except ConfigError:
        pass  # a setting since removed or changed: the comparison below names it
    diff = _first_difference(saved, json.loads(resolved.model_dump_json()))
    if diff is not None:
        key, old, new = diff
        raise ConfigError(f"--resume: {run} was trained with {key} = {old!r}, the config gives {new!r}; "
                          f"resume with the config it was started with")
    return run


def _first_difference(old: Any, new: Any, at: tuple = ()) -> Optional[tuple[str, Any, Any]]:
    if at in FREE:
        return None
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(dict.fromkeys([*old, *new])):
            found = _first_difference(old.get(key), new.get(key), (*at, key))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = _first_difference(a, b, (*at, str(i)))
            if found:
                return found
        return None
    return None if old == new else (".".join(at) or "config", old, new)


def how_to_resume(run: Path, config: str, checkpoint: Optional[Path] = None) -> str:
    """One line: the checkpoint the run can continue from and the command, or that there is none."""
    from ..train.checkpoint import latest_checkpoint

    found = checkpoint or latest_checkpoint(run) or next(
        (c for m in sorted(run.glob("member*")) if (c := latest_checkpoint(m))), None)
    if found is None:
        return "no checkpoint was written yet: train again to start over"
    command = f"modalfuse train {shlex.quote(str(config))} --resume {shlex.quote(str(run))}"
    return f"checkpoint {found} is intact; continue with: {command}"
