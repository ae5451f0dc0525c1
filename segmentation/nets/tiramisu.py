"""FC-DenseNet ("The One Hundred Layers Tiramisu", Jégou et al. 2017), written for this project.

A dense block stacks BN-ReLU-Conv3x3-Dropout layers, each seeing the concatenation of everything before it.
The down path keeps the block input with its new features (skip connections); the bottleneck and the up
path keep only the new features, which bounds the channel count (paper §3.2). The last up block keeps
its input too, and a 1x1 convolution gives per-pixel class logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class TiramisuConfig:
    down_layers: tuple[int, ...] = (4, 4, 4, 4, 4)
    bottleneck_layers: int = 4
    up_layers: tuple[int, ...] | None = None  # mirror of down_layers when None
    growth_rate: int = 12
    first_channels: int = 48
    dropout: float = 0.2
    in_channels: int = 3
    num_classes: int = 6
    extra: dict = field(default_factory=dict)

    @property
    def up(self) -> tuple[int, ...]:
        return tuple(self.up_layers) if self.up_layers is not None else tuple(reversed(self.down_layers))

    @property
    def stride(self) -> int:
        """Inputs must be divisible by this (one 2x pooling per down block)."""
        return 2 ** len(self.down_layers)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["down_layers"] = list(self.down_layers)
        data["up_layers"] = list(self.up)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TiramisuConfig:
        data = dict(data)
        data["down_layers"] = tuple(data["down_layers"])
        if data.get("up_layers") is not None:
            data["up_layers"] = tuple(data["up_layers"])
        return cls(**data)


class DenseLayer(nn.Sequential):
    def __init__(self, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=True),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
        )


class DenseBlock(nn.Module):
    """Returns either input + new features (``keep_input``) or only the new features."""

    def __init__(self, in_channels: int, n_layers: int, growth_rate: int, dropout: float, keep_input: bool) -> None:
        super().__init__()
        self.keep_input = keep_input
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, dropout) for i in range(n_layers)
        )
        self.out_channels = (in_channels if keep_input else 0) + n_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        new: list[torch.Tensor] = []
        for layer in self.layers:
            out = layer(torch.cat(features, dim=1) if len(features) > 1 else features[0])
            features.append(out)
            new.append(out)
        if self.keep_input:
            return torch.cat(features, dim=1)
        return torch.cat(new, dim=1)


class TransitionDown(nn.Sequential):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1, bias=True),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            nn.MaxPool2d(2),
        )


class TransitionUp(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, kernel_size=3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.conv(x)
        if up.shape[-2:] != skip.shape[-2:]:  # odd sizes: pad or crop to the skip connection
            dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
            up = nn.functional.pad(up, (0, max(dw, 0), 0, max(dh, 0)))[..., : skip.shape[-2], : skip.shape[-1]]
        return torch.cat([up, skip], dim=1)


class Tiramisu(nn.Module):
    def __init__(self, config: TiramisuConfig) -> None:
        super().__init__()
        if len(config.up) != len(config.down_layers):
            raise ValueError("up_layers must have as many blocks as down_layers")
        self.config = config
        g, p = config.growth_rate, config.dropout
        self.first = nn.Conv2d(config.in_channels, config.first_channels, kernel_size=3, padding=1, bias=True)
        channels = config.first_channels
        self.down_blocks = nn.ModuleList()
        self.down_transitions = nn.ModuleList()
        skip_channels: list[int] = []
        for n in config.down_layers:
            block = DenseBlock(channels, n, g, p, keep_input=True)
            self.down_blocks.append(block)
            channels = block.out_channels
            skip_channels.append(channels)
            self.down_transitions.append(TransitionDown(channels, p))
        self.bottleneck = DenseBlock(channels, config.bottleneck_layers, g, p, keep_input=False)
        channels = self.bottleneck.out_channels
        self.up_transitions = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        n_up = len(config.up)
        for i, (n, skip) in enumerate(zip(config.up, reversed(skip_channels), strict=True)):
            self.up_transitions.append(TransitionUp(channels))
            last = i == n_up - 1
            block = DenseBlock(channels + skip, n, g, p, keep_input=last)
            self.up_blocks.append(block)
            channels = block.out_channels
        self.head = nn.Conv2d(channels, config.num_classes, kernel_size=1, bias=True)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        skips: list[torch.Tensor] = []
        for block, down in zip(self.down_blocks, self.down_transitions, strict=True):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, block in zip(self.up_transitions, self.up_blocks, strict=True):
            x = block(up(x, skips.pop()))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
