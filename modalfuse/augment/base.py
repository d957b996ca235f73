"""Base of every kind's augmentation options: unknown keys refused, ``active`` says whether any operation is on."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AugmentOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def active(self) -> bool:
        """Whether any operation would change a value (every option at its default means off)."""
        return any(getattr(self, k) != f.default for k, f in type(self).model_fields.items())
