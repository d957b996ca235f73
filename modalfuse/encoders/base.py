"""Encoder contract and registry: an encoder maps one modality's batch to embeddings [n, dim]."""
from __future__ import annotations

from typing import Any, ClassVar, Optional, Union

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from ..errors import ConfigError
from ..registry import Registry


class EncoderInfo(BaseModel):
    """What an encoder learns about its modality from the fitted preprocessor (``Preprocessor.encoder_info``), typed.

    Encoders list the fields they read in ``needs``; pairing one with a modality that does not provide a
    field is a config error naming it, before any layer is built. Kinds may add fields of their own
    (plugins); ``info["name"]`` and ``info.get`` read fields like a mapping.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: Optional[str] = None
    #: vector, identity, linear: the input width
    input_dim: Optional[int] = None
    #: image: channels and the per-channel statistics the pixels were standardised with (pretrained encoders undo them)
    in_channels: Optional[int] = None
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None
    #: text and sequences: vocabulary, padding and unknown ids, maximum length, a pretrained tokenizer's model
    vocab_size: Optional[int] = None
    pad_id: Optional[int] = None
    unk_id: Optional[int] = None
    max_len: Optional[int] = None
    pretrained: Optional[str] = None
    #: audio and time series: sample rate, samples or steps per input, channels
    sample_rate: Optional[int] = None
    length: Optional[int] = None
    channels: Optional[int] = None
    #: tables: standardised numeric columns and the cardinality of each categorical one
    n_numeric: Optional[int] = None
    cardinalities: Optional[list[int]] = None
    #: graphs: node feature width
    node_features: Optional[int] = None

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, None)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and getattr(self, key, None) is not None


class Encoder(nn.Module):
    """Base class: subclasses take ``dim`` (output width) and ``info`` (from the preprocessor).

    ``kinds`` names the modality kinds whose preprocessed batches the encoder accepts; a config that
    pairs it with another kind is refused when it is read. Extra constructor keywords are its typed options.
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    #: the ``EncoderInfo`` fields the encoder reads
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim: int, info: EncoderInfo) -> None:
        super().__init__()
        self.dim = dim

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings [n, T, dim] and their validity [n, T] for token-level fusion.

        Encoders that keep a sequence (text, audio frames, image positions, residues) override
        this; the default is the pooled embedding as a single token.
        """
        emb = self(x)
        return emb[:, None], torch.ones(emb.shape[0], 1, dtype=torch.bool, device=emb.device)


ENCODERS: Registry[Encoder] = Registry("encoder", fixed=("dim", "info"))


def build_encoder(name: str, dim: int, info: Union[EncoderInfo, dict[str, Any]], options: dict[str, Any], where: str = "encoder",
                  kind: Optional[str] = None) -> Encoder:
    """Create a registered encoder from its name, output width, preprocessor info and options.

    ``info`` becomes an ``EncoderInfo``; a field the encoder ``needs`` that the modality does not provide is a
    ConfigError naming the encoder, the field and the modality's kind."""
    if not isinstance(info, EncoderInfo):
        info = EncoderInfo(**{"kind": kind, **info})
    cls = ENCODERS.get(name)
    missing = [k for k in cls.needs if k not in info]
    if missing:
        accepts = f" (for {' or '.join(cls.kinds)} modalities)" if cls.kinds else ""
        raise ConfigError(f"{where}: encoder {name!r}{accepts} needs {', '.join(missing)} from its modality, which a "
                          f"{info.kind or 'modality of this'} kind does not provide")
    return ENCODERS.create(name, options, where, dim=dim, info=info)


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers with GELU and dropout between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers += [nn.GELU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)
