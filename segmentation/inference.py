"""Network input/output at working size (shared by training validation and the runtime segmenter)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def to_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """RGB uint8 HxWx3 (or a batch NxHxWx3) -> normalised float NCHW in channels_last memory format."""
    batch = np.stack(images) if isinstance(images, list) else (images[None] if images.ndim == 3 else images)
    if not batch.flags.writeable:  # arrays viewing PIL images are read-only; torch wants to own writable memory
        batch = batch.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((tensor - mean) / std).contiguous(memory_format=torch.channels_last)


def predict_probs(model: torch.nn.Module, image: np.ndarray, stride: int, flip: bool = False) -> np.ndarray:
    """Class probabilities (C x H x W float32) for one RGB image, reflect-padded to a multiple of ``stride``.

    ``flip`` averages with the mirrored image (one batch of two): a cheap test-time augmentation."""
    h, w = image.shape[:2]
    ph, pw = (-h) % stride, (-w) % stride
    x = to_tensor(image)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
    if flip:
        x = torch.cat([x, x.flip(-1)])
    with torch.inference_mode():
        probs = torch.softmax(model(x.contiguous(memory_format=torch.channels_last)).float(), dim=1)
        if flip:
            probs = (probs[:1] + probs[1:].flip(-1)) / 2
        probs = probs[0, :, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
    return probs.contiguous().numpy()
