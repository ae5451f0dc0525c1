"""The heads' appearance tail (``train_attributes``): a short real run, what it writes, how it is served."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from matching.embedders import TrainedEfficientNetLite0, get_embedder
from matching.training.attributes import AttributeConfig, read_labelled_csv, train
from segmentation.weights import sha256_file

SHIPPED = Path(settings.SHIPPED_ATTRIBUTES_WEIGHTS)
# (article type, gender in labels.csv) -> (our gender, our kind): four clearly separable groups.
GROUPS = {
    ("Tshirts", "Men"): ("men", "topwear"),
    ("Jeans", "Men"): ("men", "bottomwear"),
    ("Heels", "Women"): ("women", "footwear"),
    ("Handbags", "Women"): ("women", "accessory"),
}


def labels_csv(shared_data: Path, folder: Path, per_group: int) -> Path:
    """An ``image,gender,kind`` CSV of ``per_group`` real studio photos of each group."""
    taken: dict[tuple[str, str], int] = {}
    path = folder / "labels.csv"
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as source, \
            open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["image", "gender", "kind"])
        for row in csv.DictReader(source):
            key = (row["article_type"], row["gender"])
            if key in GROUPS and taken.get(key, 0) < per_group:
                taken[key] = taken.get(key, 0) + 1
                writer.writerow([str(shared_data / "catalog-photos" / row["image"]), *GROUPS[key]])
    return path


@pytest.mark.slow
def test_a_short_real_run_learns_the_kinds_writes_an_appearance_tail_and_resumes(shared_data, tmp_path, db):
    # db: a camera photo's views go through the active segmenter, and the cache is keyed by its version
    photos = read_labelled_csv(labels_csv(shared_data, tmp_path, per_group=15))
    config = AttributeConfig(out=tmp_path / "attr.pt", work_dir=tmp_path / "work", views=1, epochs=4, batch_size=16,
                             val_percent=30, threads=1)
    result = train(photos, config)
    validation = result.metrics["validation"]
    # four kinds: chance is 0.25 on the photos held out of training
    assert validation["kind"]["n"] >= 10 and validation["kind"]["accuracy"] >= 0.6
    assert [m["epoch"] for m in result.history] == [1, 2, 3, 4]
    sidecar = json.loads(config.out.with_suffix(".json").read_text())
    assert sidecar["sha256"] == sha256_file(config.out) and sidecar["purpose"] == "attributes"
    assert sidecar["metrics"]["photos"] == len(photos)
    # served as an appearance embedder: the trained embedder's runtime, named for what it was trained for
    embedder = get_embedder("attributes", weights=str(config.out))
    assert isinstance(embedder, TrainedEfficientNetLite0)
    assert embedder.backbone == "efficientnet-lite0-attr256" and embedder.dimension == 256
    vectors = embedder.embed([Image.open(photos[0].path), Image.open(photos[-1].path)])
    assert vectors.shape == (2, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # a longer run on the same photos resumes from the last checkpoint instead of starting again
    config.epochs = 5
    messages: list[str] = []
    again = train(photos, config, progress=messages.append)
    assert "resumed at epoch 4" in messages
    assert [m["epoch"] for m in again.history] == [1, 2, 3, 4, 5]
    # another recipe on the same views (here the class weights) starts afresh, reusing only the view cache
    messages.clear()
    other = train(photos, replace(config, epochs=1, class_weight_power=1.0, out=tmp_path / "other.pt"),
                  progress=messages.append)
    assert [m["epoch"] for m in other.history] == [1] and not any("resumed" in m for m in messages)


def test_labels_without_the_columns_too_few_photos_or_no_tail_are_refused(tmp_path, shared_data):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,category\nx.jpg,Tshirts\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("train_attributes", "--labels", str(bad))
    few = labels_csv(shared_data, tmp_path, per_group=2)
    with pytest.raises(CommandError, match="Only 8 labelled photo"):
        call_command("train_attributes", "--labels", str(few))
    with pytest.raises(CommandError, match="--split must be between 1 and 15"):
        call_command("train_attributes", "--labels", str(few), "--min-photos", "1", "--split", "16")
    with pytest.raises(CommandError, match="--split must be between 1 and 20"):
        call_command("train_attributes", "--labels", str(few), "--min-photos", "1", "--backbone", "efficientnet-lite1",
                     "--split", "21")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("train_attributes", "--labels", str(tmp_path / "missing.csv"))


def test_a_larger_backbone_trains_its_own_stride_32_stage_at_its_own_input_size(tmp_path, db):
    lite0 = AttributeConfig(out=tmp_path / "a.pt", work_dir=tmp_path)
    lite1 = AttributeConfig(out=tmp_path / "b.pt", work_dir=tmp_path, backbone="efficientnet-lite1")
    assert (lite0.split, lite0.input_size) == (11, 224)
    assert (lite1.split, lite1.input_size) == (15, 240)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,gender,kind\nx.jpg,men,topwear\n")
    photos = read_labelled_csv(labels)
    # another backbone never reads the other's cached front features
    assert lite0.fingerprint(photos) != lite1.fingerprint(photos)


def test_the_shipped_appearance_tail_loads_with_its_checksum_and_is_what_heads_read():
    sidecar = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert sidecar["sha256"] == sha256_file(SHIPPED)
    assert "train_attributes" in sidecar["command"]
    embedder = get_embedder("attributes")
    embedder.verify()
    assert embedder.backbone == "efficientnet-lite1+lite2-attr256x3" and embedder.dimension == 768
    # served at the matching embedder's size: the mirror runs the Lite1 part on the matching pass's Lite1 front
    assert embedder.preprocessing.input_size == 240
    # the stop-39 file (a Lite1 and a Lite2 tail) joined with a second Lite2 tail; every tail's command is recorded
    joined, second_lite2 = sidecar["metrics"]["members"]
    assert [member["file"] for member in joined["members"]] == ["attr-l1.pt", "attr-l2.pt"]
    assert second_lite2["file"] == "attr-l2s1.pt"
    assert all("train_attributes --labels" in member["command"] for member in [*joined["members"], second_lite2])
    assert settings.MATCHING["CLASSIFY_APPEARANCE"] == "attributes"


@pytest.mark.django_db
def test_appearance_tails_of_two_backbones_join_side_by_side_served_at_the_size_asked(shared_data, tmp_path):
    import torch

    from matching.embedders import shares_a_front
    from matching.training import network

    members = appearance_tail_files(tmp_path, ("efficientnet-lite1", "efficientnet-lite2"), dimension=32)
    out = tmp_path / "joined.pt"
    call_command("train_attributes", "--join", *map(str, members), "--input-size", "240", "--out", str(out))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["sha256"] == sha256_file(out) and len(sidecar["metrics"]["members"]) == 2
    assert sidecar["purpose"] == "attributes" and sidecar["dimension"] == 64
    assert sidecar["preprocessing"]["input_size"] == 240
    assert [(part["backbone"], part["input_size"]) for part in sidecar["parts"]] == [
        ("efficientnet-lite1", 240), ("efficientnet-lite2", 260)]

    joined = TrainedEfficientNetLite0(name="attributes", weights=str(out), runtime="torch", threads=1)
    assert joined.backbone == "efficientnet-lite1+lite2-attr32x2" and joined.dimension == 64
    photo = Image.open(sorted((shared_data / "phone-photos" / "images").iterdir())[0])
    batch = torch.from_numpy(joined.preprocessing.tensor([photo]))
    with torch.inference_mode():
        lite1, _ = network.load_trained(members[0])
        lite2, _ = network.load_trained(members[1])
        upsampled = torch.nn.functional.interpolate(batch, size=(260, 260), mode="bilinear", align_corners=False)
        # each part's unit vector, equally weighted, no projection: the Lite1 part sees the served input as it is
        expected = torch.cat([lite1(batch), lite2(upsampled)], dim=1) * 2 ** -0.5
        assert torch.allclose(joined.torch_net()(batch), expected, atol=1e-5)

    # served at the matching embedder's size, the Lite1 part can run on the matching pass's front (the largest size,
    # 260, would have resized the Lite1 part's input and shared nothing)
    matching = TrainedEfficientNetLite0(name="m", weights=str(settings.SHIPPED_EMBEDDER_WEIGHTS), runtime="torch",
                                        threads=1, context_view=True)
    assert matching.front_keys & joined.front_keys == {("efficientnet-lite1", 15, 240)}
    assert shares_a_front(matching, joined)

    with pytest.raises(CommandError, match="none of the parts' own"):
        call_command("train_attributes", "--join", *map(str, members), "--input-size", "300",
                     "--out", str(tmp_path / "odd.pt"))
    with pytest.raises(CommandError, match="--out"):
        call_command("train_attributes", "--join", *map(str, members))
    with pytest.raises(CommandError, match="--labels is required"):
        call_command("train_attributes")


def test_a_joined_appearance_file_takes_another_tail_without_its_member_files(tmp_path):
    """The shipped appearance file joins its tails; its member files are not shipped, so a new tail joins the file."""
    import torch

    from matching.training import network

    members = appearance_tail_files(tmp_path, ("efficientnet-lite1", "efficientnet-lite2", "efficientnet-lite2"),
                                    dimension=16)
    shipped = tmp_path / "shipped.pt"
    call_command("train_attributes", "--join", *map(str, members[:2]), "--input-size", "240", "--out", str(shipped))
    again = tmp_path / "again.pt"
    call_command("train_attributes", "--join", str(shipped), str(members[2]), "--input-size", "240",
                 "--out", str(again))
    at_once = tmp_path / "at-once.pt"
    call_command("train_attributes", "--join", *map(str, members), "--input-size", "240", "--out", str(at_once))

    joined, direct = (torch.load(path, map_location="cpu", weights_only=True) for path in (again, at_once))
    assert joined["meta"] == direct["meta"]
    assert [part["members"] for part in joined["meta"]["parts"]] == [1, 2] and joined["meta"]["dimension"] == 48
    for part, expected in zip(joined["parts"], direct["parts"], strict=True):
        for state, other in zip(part, expected, strict=True):
            assert state.keys() == other.keys() and all(torch.equal(state[k], other[k]) for k in state)

    projected = tmp_path / "projected.pt"
    network.mixed_write(members[:2], projected, projection=torch.eye(32)[:, :8])
    with pytest.raises(ValueError, match="projects the backbones it joins"):
        network.ensemble_members(projected)


def appearance_tail_files(folder, backbones: tuple[str, ...], *, dimension: int) -> list:
    """One untrained appearance tail file per backbone (seeded by its position), as train_attributes writes them."""
    import torch

    from matching.training import network
    from matching.training.trainer import tail_file_write

    members = []
    for n, backbone in enumerate(backbones):
        torch.manual_seed(n)
        _, tail = network.build(backbone=backbone, dimension=dimension)
        path = folder / f"{n}-{backbone}.pt"
        tail_file_write(path, network.tail_state(tail), split=15, dimension=dimension, metrics={}, config={},
                        backbone=backbone, meta={"purpose": "attributes"})
        members.append(path)
    return members
