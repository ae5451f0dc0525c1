"""Tiramisu networks, the registry and the CCP class mapping."""

from __future__ import annotations

import pytest
import torch

from segmentation.classes import CLASS_INDEX, CLASSES, ccp_lookup
from segmentation.nets import ARCHITECTURES, UnknownArchitecture, build
from segmentation.nets.tiramisu import count_parameters


@pytest.mark.parametrize(("name", "millions"), [("fcdensenet56", 1.4), ("fcdensenet67", 3.5), ("fcdensenet103", 9.4)])
def test_paper_configurations_have_the_papers_size(name, millions):
    # Jégou et al. 2017, Table 2 (11 CamVid classes)
    assert count_parameters(build(name, num_classes=11)) / 1e6 == pytest.approx(millions, abs=0.1)


def test_light_configuration_is_small():
    assert 0.2e6 < count_parameters(build("tiramisu_light", num_classes=len(CLASSES))) < 0.35e6


@pytest.mark.parametrize("shape", [(64, 64), (50, 70), (17, 33)])
def test_output_matches_input_size(shape):
    model = build("tiramisu_tiny", num_classes=len(CLASSES)).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, *shape).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert model(x).shape == (2, len(CLASSES), *shape)


def test_configurable_depth_and_growth():
    model = build("tiramisu_tiny", num_classes=3, down_layers=(1, 2, 3), up_layers=(3, 2, 1), growth_rate=6)
    assert len(model.down_blocks) == 3 and model.config.growth_rate == 6
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(UnknownArchitecture) as info:
        build("unet9000")
    for name in ARCHITECTURES:
        assert name in str(info.value)


def test_ccp_labels_map_to_our_kinds(shared_data):
    lookup = ccp_lookup(shared_data / "ccp-masks" / "label_list.csv")
    names = {}
    for line in (shared_data / "ccp-masks" / "label_list.csv").read_text().splitlines()[1:]:
        value, name = line.split(",")[:2]
        names[name] = int(value)
    assert lookup[names["null"]] == lookup[names["skin"]] == lookup[names["hair"]] == CLASS_INDEX["background"]
    assert lookup[names["t-shirt"]] == lookup[names["blazer"]] == CLASS_INDEX["topwear"]
    assert lookup[names["jeans"]] == lookup[names["skirt"]] == CLASS_INDEX["bottomwear"]
    assert lookup[names["dress"]] == CLASS_INDEX["full-body"]
    assert lookup[names["sneakers"]] == lookup[names["boots"]] == CLASS_INDEX["footwear"]
    assert lookup[names["bag"]] == lookup[names["necklace"]] == CLASS_INDEX["other"]
