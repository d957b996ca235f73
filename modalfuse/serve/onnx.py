"""ONNX export: a wrapper taking each modality's tensor and mask as separate inputs (dynamic batch axis).

Inputs are named ``<modality>`` and ``<modality>_mask`` (bool), in the model's modality order;
outputs are ``output`` (the head's raw output, temperature applied) and, for classification,
``proba``. The wrapper runs every encoder on the whole batch and zeroes the embeddings of
missing samples, which equals ``MultimodalNet.embed`` (encoders work per sample in eval mode)
while staying free of data-dependent shapes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import warnings

import numpy as np
import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ModalfuseError


class OnnxExportError(ModalfuseError):
    """The model cannot be expressed in ONNX, or the exported file disagrees with PyTorch."""


class OnnxWrapper(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.net = model._require_fitted()
        self.names = list(model.preprocessors)
        self.temperature = float(model.temperature)
        self.classification = model.task == "classification"

    def forward(self, *tensors: torch.Tensor):
        inputs = {n: tensors[2 * i] for i, n in enumerate(self.names)}
        masks = {n: tensors[2 * i + 1] for i, n in enumerate(self.names)}
        batch = Batch(inputs, masks, None, torch.arange(tensors[0].shape[0]))
        out = self.net(batch, whole_batch=True).output
        net = self.net
        if self.temperature != 1.0:
            out = out / self.temperature
        if self.classification:
            return out, net.head.proba(out)
        return (out,)


def example_inputs(model, n: int = 3, seed: int = 0) -> list[torch.Tensor]:
    """Random inputs shaped like the model's encoded data (masks vary per row, never all off)."""
    g = torch.Generator().manual_seed(seed)
    tensors = []
    names = list(model.preprocessors)
    for i, (name, pre) in enumerate(model.preprocessors.items()):
        x = pre.example(n, g)
        mask = torch.ones(n, dtype=torch.bool)
        if len(names) > 1 and n > 1:
            mask[(i + 1) % n] = False  # a different row misses each modality
        tensors += [x, mask]
    return tensors


def export_onnx(model, path: str | Path, opset: int = 17, check: bool = True, atol: float = 1e-4) -> dict[str, Any]:
    """Write ``path`` and, when onnxruntime is installed, check it against PyTorch (max abs diff < ``atol``)."""
    path = Path(path)
    for name, pre in model.preprocessors.items():
        if pre.onnx_unsupported:
            raise OnnxExportError(f"ONNX export does not support {pre.kind} modalities ({name!r}): {pre.onnx_unsupported}; "
                                  "serve such models with `modalfuse serve`")
    if len(getattr(model, "members", [])) > 1:
        raise OnnxExportError(f"ONNX export covers single networks; this model is an ensemble of {len(model.members)} members")
    wrapper = OnnxWrapper(model).eval()
    names = list(model.preprocessors)
    args = tuple(example_inputs(model))
    input_names = [x for n in names for x in (n, f"{n}_mask")]
    output_names = ["output", "proba"] if wrapper.classification else ["output"]
    dynamic = {name: {0: "batch"} for name in input_names + output_names}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused transformer kernel has no ONNX form
        try:
            torch.onnx.export(wrapper, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        except Exception as err:  # the exporter's messages embed the whole graph: keep the first line
            raise OnnxExportError(f"ONNX export failed: {str(err).splitlines()[0][:300]}") from None
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    info: dict[str, Any] = {"file": path.name, "opset": opset, "inputs": input_names, "outputs": output_names}
    if check:
        info["parity"] = check_parity(model, path, atol=atol)
    return info


def check_parity(model, path: str | Path, atol: float = 1e-4, n: int = 5) -> Optional[dict[str, Any]]:
    """Max abs difference between onnxruntime and the PyTorch model on random inputs; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from ..data.dataset import Features, SkipReport

    tensors = example_inputs(model, n=n, seed=1)
    names = list(model.preprocessors)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for i, name in enumerate(names):
        feeds[name] = tensors[2 * i].numpy()
        feeds[f"{name}_mask"] = tensors[2 * i + 1].numpy()
    got = session.run(None, feeds)[0]
    features = Features({n: tensors[2 * i] for i, n in enumerate(names)}, {n: tensors[2 * i + 1] for i, n in enumerate(names)},
                        None, list(range(n)), SkipReport(None, n, n))
    expected = model.outputs(features)["output"].numpy()
    diff = float(np.max(np.abs(got - expected)))
    if not diff < atol:
        raise OnnxExportError(f"ONNX export differs from PyTorch: max abs diff {diff:.3g} >= {atol}")
    return {"max_abs_diff": diff, "atol": atol, "rows": n, "onnxruntime": ort.__version__}
