"""Segmentation networks, registered by name (``build("tiramisu_light", num_classes=6)``).

Two families: the FC-DenseNet Tiramisu (the product's reference, trained from scratch) and ``lite_unet``, a
U-Net decoder on the ImageNet EfficientNet-Lite0 encoder. A weights file stores its network's config; the
``family`` key in it says which network to build (absent: a Tiramisu, as every file before the second family).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep ``import segmentation.nets`` free of torch
    from torch import nn

    from .lite_unet import LiteUNetConfig
    from .tiramisu import TiramisuConfig

# name -> keyword arguments for its family's config (TiramisuConfig unless "family" says otherwise). The first
# three are the paper's (Table 2).
ARCHITECTURES: dict[str, dict] = {
    "fcdensenet56": {"down_layers": (4, 4, 4, 4, 4), "bottleneck_layers": 4, "growth_rate": 12, "first_channels": 48},
    "fcdensenet67": {"down_layers": (5, 5, 5, 5, 5), "bottleneck_layers": 5, "growth_rate": 16, "first_channels": 48},
    "fcdensenet103": {
        "down_layers": (4, 5, 7, 10, 12),
        "bottleneck_layers": 15,
        "growth_rate": 16,
        "first_channels": 48,
    },
    # CPU configurations (DESIGN §7): four down blocks, so inputs are multiples of 16.
    "tiramisu_light": {
        "down_layers": (3, 3, 3, 3),
        "bottleneck_layers": 3,
        "growth_rate": 8,
        "first_channels": 32,
        "dropout": 0.1,
    },
    "tiramisu_small": {
        "down_layers": (4, 4, 4, 4),
        "bottleneck_layers": 4,
        "growth_rate": 12,
        "first_channels": 32,
        "dropout": 0.1,
    },
    # For tests: a few thousand parameters, trains in seconds at 64 px.
    "tiramisu_tiny": {
        "down_layers": (2, 2),
        "bottleneck_layers": 2,
        "growth_rate": 4,
        "first_channels": 8,
        "dropout": 0.0,
    },
    # ImageNet encoder + light U-Net decoder (nets/lite_unet.py); 3.0 M parameters, stride 32.
    "lite0_unet": {"family": "lite_unet"},
    # The same decoder on the deeper and wider ImageNet encoders of Lite1 (4.0 M parameters) and Lite2 (5.0 M).
    "lite1_unet": {"family": "lite_unet", "encoder": "efficientnet-lite1"},
    "lite2_unet": {"family": "lite_unet", "encoder": "efficientnet-lite2"},
}


class UnknownArchitecture(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def config_for(name: str, **overrides) -> TiramisuConfig | LiteUNetConfig:
    if name not in ARCHITECTURES:
        raise UnknownArchitecture(
            f"Unknown segmentation architecture {name!r}; valid: {', '.join(sorted(ARCHITECTURES))}"
        )
    kwargs = dict(ARCHITECTURES[name])
    return replace(_config_class(kwargs.pop("family", None))(**kwargs), **overrides)


def build_for_config(config: TiramisuConfig | LiteUNetConfig) -> nn.Module:
    from .lite_unet import LiteUNet, LiteUNetConfig
    from .tiramisu import Tiramisu

    return LiteUNet(config) if isinstance(config, LiteUNetConfig) else Tiramisu(config)


def build(name: str, **overrides) -> nn.Module:
    return build_for_config(config_for(name, **overrides))


def build_from_config(data: dict) -> nn.Module:
    """The network a weights file describes (its stored ``config``)."""
    return build_for_config(_config_class(data.get("family")).from_dict(data))


def _config_class(family: str | None) -> type[TiramisuConfig] | type[LiteUNetConfig]:
    """The config class of a network family (None: the Tiramisu, as in every file before the second family)."""
    if family == "lite_unet":
        from .lite_unet import LiteUNetConfig

        return LiteUNetConfig
    from .tiramisu import TiramisuConfig

    return TiramisuConfig
