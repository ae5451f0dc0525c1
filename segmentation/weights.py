"""Weights files: loading a network with its preprocessing, and checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings

from . import conf


class WeightsError(RuntimeError):
    """A weights file that is missing, corrupt or does not match its recorded checksum."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_sidecar() -> dict | None:
    """The JSON sidecar of the weights committed under models/segmenter/ (the newest when several)."""
    sidecars = sorted(conf.shipped_dir().glob("*.json"))
    if not sidecars:
        return None
    data = json.loads(sidecars[-1].read_text())
    data["weights_path"] = str(conf.shipped_dir() / data["weights_file"])
    return data


def resolve_path(stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def load_network(path: Path, expected_sha256: str | None = None):  # noqa: ANN201
    """(model in eval mode, channels_last; metadata dict without the state dict)."""
    import torch

    from .nets import build_from_config

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"Segmenter weights not found: {path}")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise WeightsError(f"Segmenter weights {path} do not match their SHA-256 {expected_sha256[:12]}…")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = build_from_config(payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"Cannot load segmenter weights {path}: {exc}") from exc
    model.eval()
    model = model.to(memory_format=torch.channels_last)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


def save_network(
    state_dict: dict, *, arch: str, config: dict, classes: list[str], long_side: int, stride: int, path: Path
) -> str:
    """Write a weights file (state dict + everything needed to use it); returns its SHA-256. A ``lite_unet``'s
    tensors are stored in half precision (6 MB instead of 12; loading converts them back)."""
    import torch

    if config.get("family") == "lite_unet":
        state_dict = {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}

    payload = {
        "arch": arch,
        "config": config,
        "classes": list(classes),
        "input": {"long_side": long_side, "stride": stride, "mean": [0.5] * 3, "std": [0.5] * 3},
        "state_dict": state_dict,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return sha256_file(Path(path))
