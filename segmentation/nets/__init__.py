"""Segmentation networks, registered by name (``build("tiramisu_light", num_classes=6)``)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep ``import segmentation.nets`` free of torch
    from .tiramisu import Tiramisu, TiramisuConfig

# name -> keyword arguments for TiramisuConfig. The first three are the paper's (Table 2).
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
}


class UnknownArchitecture(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def config_for(name: str, **overrides) -> TiramisuConfig:
    from .tiramisu import TiramisuConfig

    if name not in ARCHITECTURES:
        raise UnknownArchitecture(
            f"Unknown segmentation architecture {name!r}; valid: {', '.join(sorted(ARCHITECTURES))}"
        )
    return replace(TiramisuConfig(**ARCHITECTURES[name]), **overrides)


def build(name: str, **overrides) -> Tiramisu:
    from .tiramisu import Tiramisu

    return Tiramisu(config_for(name, **overrides))


def build_from_config(data: dict) -> Tiramisu:
    from .tiramisu import Tiramisu, TiramisuConfig

    return Tiramisu(TiramisuConfig.from_dict(data))
