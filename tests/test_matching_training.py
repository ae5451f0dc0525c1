"""Embedder training: the pair split, a short real training run, versions, promotion, the shipped weights."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from PIL import Image

from matching import services
from matching.embedders import TrainedEfficientNetLite0, get_embedder, reset_embedders
from matching.models import EmbeddingModel, ModelState
from matching.training import data, network
from matching.training.promotion import embedder_promote, embedder_register
from matching.training.trainer import SERVED_CONTEXT, SERVED_GARMENT, TrainConfig, confusable_order, train
from matching.training.views import query_view, shop_view

SHIPPED = Path(settings.SHIPPED_EMBEDDER_WEIGHTS)
SINGLE_TAIL = SHIPPED.parent / "efficientnet-lite0-ft256.pt"  # the first shipped file, now the ensemble's first tail
TWO_TAILS = SHIPPED.parent / "efficientnet-lite0-ft256x2.pt"  # the second shipped file
THREE_TAILS = SHIPPED.parent / "efficientnet-lite0-ft256x3.pt"  # the third: the second's two tails and a third
SEEDED_TAILS = SHIPPED.parent / "efficientnet-lite0-ft256x3b.pt"  # the fourth: three tails of their own seeds


def _pairs_csv(shared_data) -> Path:
    return shared_data / "shop-worn-pairs" / "pairs.csv"


def test_pair_split_keeps_the_held_out_pairs_out_of_training(shared_data):
    rows = data.read_pair_file(_pairs_csv(shared_data))
    split = data.pair_split(row["pair"] for row in rows)
    holdout = {pid for pid, part in split.items() if part == "holdout"}
    validation = {pid for pid, part in split.items() if part == "validation"}
    # the last 12.5 % of pair ids, whatever the order of the file
    assert holdout == {row["pair"] for row in sorted(rows, key=lambda r: r["pair"])[-len(holdout):]}
    assert len(holdout) == -(-len(rows) // 8)
    assert 0 < len(validation) < len(rows) * 0.15
    trained = data.pair_groups(_pairs_csv(shared_data), splits=("train",))
    trained_ids = {group.key.rsplit(":", 1)[1] for group in trained}
    assert not trained_ids & holdout and not trained_ids & validation
    trained_photos = {photo.path for group in trained for photo in group.photos}
    held_photos = {str(_pairs_csv(shared_data).parent / row["worn"]) for row in rows if row["pair"] in holdout}
    assert not trained_photos & held_photos
    # deterministic: the same split twice
    assert data.pair_split(reversed(list(split))) == split


def test_the_held_out_evaluation_set_takes_real_unknown_photos_of_other_kinds(shared_data, tmp_path):
    from matching.training.pair_eval import write_pair_eval

    phones = tmp_path / "phones.csv"
    images = sorted((shared_data / "phone-photos" / "images").glob("*.jpg"))[:3]
    phones.write_text("image,kind\n" + "".join(f"{path},footwear\n" for path in images))
    out = tmp_path / "eval"
    made = write_pair_eval(pairs_csv=_pairs_csv(shared_data), out=out, split="holdout", pair_limit=8,
                           unknown_photos_csv=phones)
    assert (made["queries_in"], made["queries_out"]) == (6, 2 + 3)
    with open(made["queries"], newline="") as handle:
        queries = list(csv.DictReader(handle))
    with open(made["catalog"], newline="") as handle:
        catalogue = {row["image"] for row in csv.DictReader(handle)}
    unknown = [row for row in queries if (out / row["image"]).resolve() in {path.resolve() for path in images}]
    assert len(unknown) == 3 and all(row["sku"] == "" for row in unknown)  # never in the catalogue
    assert not {row["image"] for row in unknown} & catalogue


@pytest.mark.django_db
def test_registered_providers_feed_the_one_dataset(shared_data, tmp_path):
    photo = str(shared_data / "shop-worn-pairs" / "shop" / "p0001.jpg")
    data.register_pair_provider("test", lambda: [data.Group(key="product:X", source="confirmed",
                                                            photos=[data.Photo(photo, data.QUERY)])])
    try:
        groups = data.training_groups(use_database=True)
    finally:
        data._providers.pop("test")
    assert [g.key for g in groups if g.source == "confirmed"] == ["product:X"]


def test_views_end_in_the_runtime_crop(shared_data):
    worn = Image.open(shared_data / "shop-worn-pairs" / "worn" / "p0005.jpg")
    shop = Image.open(shared_data / "shop-worn-pairs" / "shop" / "p0005.jpg")
    rng = np.random.default_rng(1)
    for view in (query_view(worn), query_view(worn, rng), shop_view(shop), shop_view(shop, rng, phone_like=True)):
        assert view.width == view.height  # padded square, as canonical_crop makes it
    assert services.catalog_view(shop).tobytes() == shop_view(shop).tobytes()


def _tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    options = dict(out=tmp_path / "tiny.pt", work_dir=tmp_path / "work", dimension=32, views=1, epochs=4,
                   batch_size=12, lr_tail=1e-3, lr_head=1e-2, time_budget_s=600, threads=1, max_distractors=20,
                   confusable_cluster=3)  # exercises the mined batches from epoch 2
    return TrainConfig(**(options | overrides))


@pytest.fixture
def tiny_run(shared_data, tmp_path, db):  # db: the served views go through the active segmenter
    groups = data.pair_groups(_pairs_csv(shared_data), splits=("train",))[:24]
    validation = data.pair_groups(_pairs_csv(shared_data), splits=("validation",))[:8]
    return train(groups, validation, _tiny_config(tmp_path, served_views=True))


@pytest.mark.slow
def test_a_short_real_training_run_lowers_the_loss_and_resumes(shared_data, tmp_path, tiny_run):
    losses = [entry["loss"] for entry in tiny_run.history if "loss" in entry]
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    sidecar = json.loads(tiny_run.weights.with_suffix(".json").read_text())
    assert sidecar["dimension"] == 32 and len(sidecar["sha256"]) == 64
    # the cache holds each photo's two served views (garment, context), both sides, beside the training views
    cache = np.load(next((tmp_path / "work").glob("views-*.npz")))
    for domain in (0, 1):
        roles = cache["served"][cache["domain"] == domain]
        assert (roles == SERVED_GARMENT).sum() == (roles == SERVED_CONTEXT).sum() == 24 + 8
    # validation scored each photo as matching does: the mean of its served views
    assert tiny_run.history[0]["n_queries"] == 8
    # resuming a finished run trains nothing more and gives the same history
    groups = data.pair_groups(_pairs_csv(shared_data), splits=("train",))[:24]
    validation = data.pair_groups(_pairs_csv(shared_data), splits=("validation",))[:8]
    again = train(groups, validation, _tiny_config(tmp_path, served_views=True))
    assert again.history == tiny_run.history


@pytest.mark.slow
def test_one_run_trains_two_tails_on_one_view_cache_and_writes_their_ensemble(shared_data, tmp_path):
    from matching.training.trainer import train_tails

    groups = data.pair_groups(_pairs_csv(shared_data), splits=("train",))[:16]
    validation = data.pair_groups(_pairs_csv(shared_data), splits=("validation",))[:6]
    config = _tiny_config(tmp_path, out=tmp_path / "both.pt", epochs=2)
    result = train_tails(groups, validation, config, clusters=[1, 3])
    assert len(list((tmp_path / "work").glob("views-*.npz"))) == 1  # the second tail trained on the same cache
    assert [len(run["history"]) for run in result.history] == [3, 3]  # epoch 0 and two trained epochs each
    sidecar = json.loads((tmp_path / "both.json").read_text())
    assert sidecar["members"] == 2 and sidecar["dimension"] == 64
    assert [m["config"]["confusable_cluster"] for m in sidecar["metrics"]["members"]] == [1, 3]
    # each tail its own seed: their first epochs (random batches for both) differ, so the ensemble is not two alike
    assert [m["config"]["tail_seed"] for m in sidecar["metrics"]["members"]] == [0, 1]
    assert result.history[0]["history"][1]["loss"] != result.history[1]["history"][1]["loss"]
    photos = [Image.open(shared_data / "shop-worn-pairs" / "worn" / "p0001.jpg")]
    embedder = TrainedEfficientNetLite0(name="both", weights=str(result.weights), runtime="torch", threads=1)
    vectors = embedder.embed(photos)
    assert vectors.shape == (1, 64) and np.isclose(np.linalg.norm(vectors), 1.0, atol=1e-4)


@pytest.mark.parametrize("tails", ["4", "1,x", "0,4"])
def test_train_embedder_refuses_tails_it_cannot_train_apart(tails):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--tails"):
        call_command("train_embedder", "--pairs", "unused.csv", "--no-database", "--tails", tails)


def test_a_run_short_of_time_ends_its_schedule_at_the_last_epoch_that_fits():
    from matching.training.trainer import epochs_that_fit, warmup_cosine

    assert epochs_that_fit(8, 1, epoch_seconds=100, left_seconds=1000) == 8  # time enough: the plan stands
    assert epochs_that_fit(8, 2, epoch_seconds=100, left_seconds=450) == 6  # four more fit
    assert epochs_that_fit(8, 3, epoch_seconds=100, left_seconds=20) == 4  # never below the epoch under way
    # the shortened length is part of the schedule's state, so a resumed run keeps it
    optimiser = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimiser, 80, warmup=1)
    schedule.lr_lambdas[0].total_steps = 40
    restored = warmup_cosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 80, warmup=1)
    restored.load_state_dict(schedule.state_dict())
    assert restored.lr_lambdas[0](40) == 0.0 and restored.lr_lambdas[0](20) == pytest.approx(0.5)


def test_confusable_batches_put_each_product_beside_its_look_alikes():
    neighbours = {0: [5, 6, 7], 5: [0, 6], 1: [2], 2: [1]}
    for seed in range(5):
        order = confusable_order(np.random.default_rng(seed), list(range(8)), neighbours, cluster=3)
        assert sorted(order) == list(range(8))  # every product exactly once per epoch
        position = {group: n for n, group in enumerate(order)}
        assert abs(position[1] - position[2]) == 1  # look-alikes share a run, so a batch


@pytest.mark.slow
def test_fine_tuning_starts_from_the_trained_tail(tiny_run):
    saved = torch.load(tiny_run.weights, map_location="cpu", weights_only=True)
    split = int(saved["meta"]["split"])
    _, tail = network.build(split=split, dimension=32)
    network.tail_load(tail, tiny_run.weights, split=split, dimension=32)
    state = tail.state_dict()
    assert all(torch.equal(state[key], value.float()) for key, value in saved["tail"].items())
    _, wider = network.build(split=split, dimension=64)
    with pytest.raises(ValueError, match="dimension 32"):
        network.tail_load(wider, tiny_run.weights, split=split, dimension=64)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_trained_version_registers_loads_embeds_and_is_refused_when_worse(shared_data, tmp_path, tiny_run,
                                                                          settings):
    # PyTorch runtime: the noisy candidate below would (rightly) fail the ONNX export check
    trained = settings.EMBEDDERS["trained"]
    settings.EMBEDDERS = {**settings.EMBEDDERS, "trained": {**trained, "OPTIONS": {**trained["OPTIONS"],
                                                                                   "RUNTIME": "torch"}}}
    reset_embedders()
    model = embedder_register(weights=tiny_run.weights)
    assert model.dimension == 32 and model.weights and not model.active
    assert model.metrics["training"]["history"]
    vectors = services.embedder_for(model).embed([Image.open(shared_data / "shop-worn-pairs" / "worn" / "p0001.jpg")])
    assert vectors.shape == (1, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    # a candidate whose network is drowned in noise is worse than the active (shipped) version: never promoted
    payload = torch.load(tiny_run.weights, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    payload["tail"] = {
        k: (v.float() + 3 * v.float().std() * torch.randn(v.shape, generator=generator)).half() if v.dim() > 1 else v
        for k, v in payload["tail"].items()
    }
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    candidate = embedder_register(weights=broken)
    verdict = embedder_promote(model=candidate, pair_files=[_pairs_csv(shared_data)], pair_limit=16,
                               distractor_limit=0, segment=False)
    assert verdict["promoted"] is False
    assert verdict["candidate"]["recall@1"] < verdict["active"]["recall@1"]
    assert verdict["paired"]["active_only_first"] > verdict["paired"]["candidate_only_first"]
    candidate.refresh_from_db()
    assert candidate.state == ModelState.RETIRED and not candidate.active
    assert EmbeddingModel.objects.get(active=True).name != candidate.name


def test_the_shipped_weights_load_with_their_checksum_and_onnx_matches_torch(shared_data, tmp_path, settings):
    assert SHIPPED.exists(), "models/embedder/ ships the trained embedder"
    sidecar = json.loads(SHIPPED.with_suffix(".json").read_text())
    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    onnx = TrainedEfficientNetLite0(name="t-onnx", weights=str(SHIPPED), runtime="onnx", threads=1)
    torch_ = TrainedEfficientNetLite0(name="t-torch", weights=str(SHIPPED), runtime="torch", threads=1)
    assert onnx.checksum == sidecar["sha256"]
    # six tails of two backbones, projected, served with the current studio mask rule, which their version names
    assert onnx.version == torch_.version and onnx.version.startswith("efficientnet-lite0+lite1-ft256x6p768+m2@")
    assert onnx.studio_mask_rule == 2 and sidecar["preprocessing"]["studio_mask"] == 2
    photos = [Image.open(shared_data / "shop-worn-pairs" / "shop" / f"p000{i}.jpg") for i in range(3)]
    a, b = onnx.embed(photos), torch_.embed(photos)
    assert a.shape == (3, 768)
    assert np.abs(a - b).max() < 1e-3


def test_an_ensemble_runs_each_tail_once_and_averages_their_similarities(shared_data, tmp_path):
    from matching.training.trainer import ensemble_write_with_sidecar

    # a second member: the shipped tail with its projection's rows permuted (another vector space, same network)
    payload = torch.load(SINGLE_TAIL, map_location="cpu", weights_only=True)
    permutation = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    payload["tail"]["projection.weight"] = payload["tail"]["projection.weight"][permutation]
    second = tmp_path / "second.pt"
    torch.save(payload, second)
    ensemble = tmp_path / "ensemble.pt"
    sidecar = ensemble_write_with_sidecar([SINGLE_TAIL, second], ensemble)
    assert sidecar["dimension"] == 512 and sidecar["members"] == 2
    assert [m["file"] for m in sidecar["metrics"]["members"]] == [SINGLE_TAIL.name, "second.pt"]

    photos = [Image.open(shared_data / "shop-worn-pairs" / kind / f"p000{i}.jpg") for kind in ("shop", "worn")
              for i in range(2)]
    single = TrainedEfficientNetLite0(name="one", weights=str(SINGLE_TAIL), runtime="torch", threads=1).embed(photos)
    both = TrainedEfficientNetLite0(name="two", weights=str(ensemble), runtime="torch", threads=1)
    assert both.version.startswith("efficientnet-lite0-ft256x2@") and both.dimension == 512
    vectors = both.embed(photos)
    assert vectors.shape == (4, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # each half is one member's vector: the first is the shipped one, the second the same permuted
    assert np.abs(vectors[:, :256] * np.sqrt(2) - single).max() < 1e-3
    assert np.abs(vectors[:, 256:] * np.sqrt(2) - single[:, permutation.numpy()]).max() < 1e-3
    with pytest.raises(ValueError, match="ensemble"):
        network.tail_load(network.build()[1], ensemble, split=11, dimension=256)
    with pytest.raises(ValueError, match="two or more"):
        network.ensemble_write([SINGLE_TAIL], tmp_path / "alone.pt")
    # an ensemble member brings each of its tails
    nested = network.ensemble_write([ensemble, SINGLE_TAIL], tmp_path / "nested.pt")
    assert nested["members"] == 3 and nested["dimension"] == 768
    # members trained with another studio mask rule are refused, unless the ensemble names the rule it is served with
    ruled = torch.load(second, map_location="cpu", weights_only=True)
    ruled["meta"]["preprocessing"] = {**ruled["meta"]["preprocessing"], "studio_mask": 2}
    torch.save(ruled, tmp_path / "ruled.pt")
    with pytest.raises(ValueError, match="preprocessing"):
        network.ensemble_write([SINGLE_TAIL, tmp_path / "ruled.pt"], tmp_path / "mixed.pt")
    mixed = ensemble_write_with_sidecar([SINGLE_TAIL, tmp_path / "ruled.pt"], tmp_path / "mixed.pt", studio_mask=2)
    assert mixed["preprocessing"]["studio_mask"] == 2
    served = TrainedEfficientNetLite0(name="mixed", weights=str(tmp_path / "mixed.pt"), runtime="torch", threads=1)
    assert served.studio_mask_rule == 2 and "+m2@" in served.version


def test_a_larger_backbone_is_served_at_its_own_size_and_never_mixed_with_another(shared_data, tmp_path):
    from matching.training.trainer import tail_file_write

    # an ImageNet Lite1 tail with a fresh projection, written as training writes it
    front, tail = network.build(backbone="efficientnet-lite1", dimension=32)
    assert len(front.blocks) == network.BACKBONES["efficientnet-lite1"].split == 15
    lite1 = tmp_path / "lite1.pt"
    sidecar = tail_file_write(lite1, network.tail_state(tail), split=15, dimension=32, metrics={}, config={},
                              backbone="efficientnet-lite1")
    assert sidecar["backbone"] == "efficientnet-lite1" and sidecar["preprocessing"]["input_size"] == 240

    served = TrainedEfficientNetLite0(name="lite1", weights=str(lite1), runtime="torch", threads=1)
    assert served.version.startswith("efficientnet-lite1-ft32") and served.preprocessing.input_size == 240
    photo = Image.open(shared_data / "shop-worn-pairs" / "shop" / "p0001.jpg")
    batch = torch.from_numpy(served.preprocessing.tensor([photo]))
    assert tuple(front(batch).shape) == (1, 112, 15, 15)  # Lite1's stride-16 map at 240 px
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(tail.eval()(front(batch)), dim=1).numpy()
    assert np.abs(served.torch_net()(batch).detach().numpy() - expected).max() < 1e-2  # half-precision file
    assert served.embed([photo]).shape == (1, 32)

    with pytest.raises(ValueError, match="efficientnet-lite1"):
        network.tail_load(network.build(dimension=32)[1], lite1, split=15, dimension=32)
    with pytest.raises(ValueError, match="backbone"):
        network.ensemble_write([SINGLE_TAIL, lite1], tmp_path / "mixed.pt")


@pytest.mark.django_db
def test_two_backbones_join_into_one_projected_network(shared_data, tmp_path, settings):
    from matching.training.trainer import mixed_fit, tail_file_write

    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    _, tail = network.build(backbone="efficientnet-lite1", dimension=256)
    lite1 = tmp_path / "lite1.pt"
    tail_file_write(lite1, network.tail_state(tail), split=15, dimension=256, metrics={}, config={},
                    backbone="efficientnet-lite1", meta={"preprocessing": {
                        **torch.load(SINGLE_TAIL, weights_only=True)["meta"]["preprocessing"], "input_size": 240}})
    photos = sorted((shared_data / "catalog-photos" / "images").glob("*.jpg"))[:24]
    mixed = tmp_path / "mixed.pt"
    sidecar = mixed_fit([SINGLE_TAIL, lite1], photos, mixed, dimension=16, threads=1)
    assert sidecar["dimension"] == 16 and sidecar["members"] == 2 and sidecar["preprocessing"]["input_size"] == 240
    assert [(part["backbone"], part["input_size"]) for part in sidecar["parts"]] == [
        ("efficientnet-lite0", 224), ("efficientnet-lite1", 240)]
    assert 0 < sidecar["metrics"]["projection"]["energy_kept"] <= 1

    served = TrainedEfficientNetLite0(name="mixed", weights=str(mixed), runtime="onnx", threads=1)
    assert served.version.startswith("efficientnet-lite0+lite1-ft256x2p16") and served.dimension == 16
    images = [Image.open(path) for path in photos[:3]]
    batch = torch.from_numpy(served.preprocessing.tensor(images))
    net = served.torch_net()
    with torch.inference_mode():
        # each part sees the photo at its own size; their vectors are joined, equally weighted, and projected
        lite0 = network.load_trained(SINGLE_TAIL)[0](torch.nn.functional.interpolate(
            batch, size=(224, 224), mode="bilinear", align_corners=False))
        lite1_vectors = net.parts[1](batch)
        expected = torch.cat([lite0, lite1_vectors], dim=1) * 2 ** -0.5 @ net.projection
        assert torch.allclose(net(batch), expected, atol=1e-5)
    vectors = served.embed(images)
    assert vectors.shape == (3, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # two 256-d tails cannot be projected to more than 512 dimensions: refused before any photo is embedded
    with pytest.raises(ValueError, match="give 512 dimensions"):
        mixed_fit([SINGLE_TAIL, lite1], photos, tmp_path / "wide.pt", dimension=768, threads=1)
    assert not list(tmp_path.glob("wide*"))

    with pytest.raises(ValueError, match="two or more backbones"):
        network.mixed_write([SINGLE_TAIL, TWO_TAILS], tmp_path / "one-backbone.pt")
    with pytest.raises(ValueError, match="projects the backbones it joins"):
        network.ensemble_write([mixed, SINGLE_TAIL], tmp_path / "nested.pt")
    with pytest.raises(ValueError, match="several tails"):
        network.tail_load(network.build()[1], mixed, split=11, dimension=256)


@pytest.mark.slow
def test_one_command_trains_tails_on_two_backbones_and_joins_them(shared_data, tmp_path):
    from django.core.management import call_command

    pairs = tmp_path / "pairs.csv"
    with open(_pairs_csv(shared_data), newline="") as source, open(pairs, "w", newline="") as target:
        rows = list(csv.DictReader(source))[:48]
        writer = csv.DictWriter(target, fieldnames=["pair", "shop", "worn"])
        writer.writeheader()
        root = shared_data / "shop-worn-pairs"
        writer.writerows({"pair": r["pair"], "shop": root / r["shop"], "worn": root / r["worn"]} for r in rows)
    photos = tmp_path / "photos.csv"
    images = sorted((shared_data / "catalog-photos" / "images").glob("*.jpg"))[:24]
    photos.write_text("image\n" + "".join(f"{path}\n" for path in images))
    out = tmp_path / "joined.pt"
    call_command("train_embedder", "--pairs", str(pairs), "--photos", str(photos), "--no-database",
                 "--part", "lite0@12:1:1", "--part", "efficientnet-lite1:1,3:1", "--dimension", "16",
                 "--joined-dimension", "24", "--views", "1", "--batch-size", "12", "--min-groups", "10",
                 "--threads", "1", "--time-budget", "30", "--bf16", "--work-dir", str(tmp_path / "work"),
                 "--out", str(out), stdout=io.StringIO(), stderr=(errors := io.StringIO()))

    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["dimension"] == 24 and sidecar["members"] == 3
    assert [(part["backbone"], part["members"]) for part in sidecar["parts"]] == [
        ("efficientnet-lite0", 1), ("efficientnet-lite1", 2)]
    # each part trained in its own folder on its own view cache, with its epochs and the tails it was given; the
    # caches were built together from the same rendered views, each front at its own size
    caches = {}
    for backbone in ("efficientnet-lite0", "efficientnet-lite1"):
        (stem,) = [path.with_suffix("").with_suffix("") for path in (tmp_path / "work" / backbone).glob("views-*.npz")]
        caches[backbone] = (np.load(stem.with_suffix(".npz")), np.load(stem.with_suffix(".features.npy")))
    (lite0_views, lite0_maps), (lite1_views, lite1_maps) = caches.values()
    for array in ("group", "domain", "runtime", "photo"):
        assert np.array_equal(lite0_views[array], lite1_views[array])
    # Lite0 from its block 12 (after the stride-32 stage's strided block), Lite1 from its own split
    assert lite0_maps.shape[1:] == (192, 7, 7) and lite1_maps.shape[2:] == (15, 15)
    lite0, lite1 = sidecar["metrics"]["members"]
    assert lite0["config"]["backbone"] == "efficientnet-lite0" and lite0["config"]["epochs"] == 1
    assert lite0["config"]["split"] == 12 and {m["config"]["split"] for m in lite1["members"]} == {15}
    assert [m["config"]["confusable_cluster"] for m in lite1["members"]] == [1, 3]
    assert {m["config"]["backbone"] for m in lite1["members"]} == {"efficientnet-lite1"}
    # --bf16 where this CPU computes bfloat16 natively; elsewhere float32, and the command says so
    native = network.native_bfloat16()
    assert lite0["config"]["bf16"] is native and all(m["config"]["bf16"] is native for m in lite1["members"])
    assert ("no native bfloat16" in errors.getvalue()) is not native
    # the budget less the join's reserve was shared by planned cost: one Lite0 tail-epoch at block 12 against two
    # of Lite1's
    from matching.training.trainer import JOIN_RESERVE_S

    lite0_cost = network.tail_cost("efficientnet-lite0", 12, bf16=native)
    lite1_cost = 2 * network.tail_cost("efficientnet-lite1", bf16=native)
    assert lite0_cost < 1.0
    budget = (30 * 60 - JOIN_RESERVE_S) * lite0_cost / (lite0_cost + lite1_cost)  # less the caches' minute or two
    assert budget - 120 <= lite0["config"]["time_budget_s"] <= budget
    assert sidecar["metrics"]["wall_seconds"] > 0
    served = TrainedEfficientNetLite0(name="joined", weights=str(out), runtime="onnx", threads=1)
    vectors = served.embed([Image.open(images[0])])
    assert vectors.shape == (1, 24) and np.isclose(np.linalg.norm(vectors), 1.0, atol=1e-4)


@pytest.mark.parametrize("parts, message", [
    (["--part", "lite1:1,4:4"], "two or more backbones"),
    (["--part", "lite1:1,4:4", "--part", "efficientnet-lite1:2:4"], "each named once"),
    (["--part", "lite9:1:1", "--part", "lite0:1:1"], "unknown backbone"),
    (["--part", "lite0:1", "--part", "lite1:1:1"], "C1,C2:EPOCHS"),
    (["--part", "lite0:1,x:2", "--part", "lite1:1:1"], "whole numbers"),
    (["--part", "lite0@x:1:2", "--part", "lite1:1:1"], "whole numbers"),
    (["--part", "lite0@5:1:2", "--part", "lite1:1:1"], "no measured step cost"),
    (["--part", "lite0:0:2", "--part", "lite1:1:1"], "1 or more"),
    (["--part", "lite0:1:2", "--part", "lite1:1:1", "--tails", "1,4"], "leave out --tails"),
    # two tails of 256 dimensions cannot be projected to the default 768: refused before 20 minutes of training
    (["--part", "lite0:1:1", "--part", "lite1:1:1"], "joined-dimension 768 is more than the 512"),
])
def test_train_embedder_refuses_parts_it_cannot_train(parts, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("train_embedder", "--pairs", "unused.csv", "--no-database", *parts)


@pytest.mark.django_db
def test_an_installation_on_the_earlier_shipped_file_keeps_it_and_switches_in_the_background(settings):
    # given an installation made when the single-tail file was the shipped default (its row names no file)
    trained = settings.EMBEDDERS["trained"]
    settings.EMBEDDERS = {**settings.EMBEDDERS, "trained": {**trained, "OPTIONS": {**trained["OPTIONS"],
                                                                                   "WEIGHTS": str(SINGLE_TAIL)}}}
    reset_embedders()
    old = services.embedding_model_active()
    assert old.weights == "" and old.name.startswith("efficientnet-lite0-ft256+")
    # when the upgrade brings the two-tail file as the default and migrate runs the adoption
    settings.EMBEDDERS = {**settings.EMBEDDERS, "trained": trained}
    reset_embedders()
    services.embedding_model_for()  # the new version's row may exist already (rows are made "building")
    target = services.shipped_embedder_adopt()
    # then the old version still loads its own file and serves while the new one is built
    old.refresh_from_db()
    assert old.active and old.weights == str(SINGLE_TAIL.relative_to(settings.BASE_DIR))
    assert services.embedder_for(old).version == old.name
    assert target.name.startswith("efficientnet-lite0+lite1-ft256x6p768+") and target.state == ModelState.BUILDING
    assert target.progress["total"] == 0  # the build was started (no catalogue photos here)
    assert services.embedding_model_active() == old
    # and a second migrate neither re-pins nor starts another build
    assert services.shipped_embedder_adopt() == target


@pytest.mark.django_db
def test_a_version_trained_here_is_not_moved_by_an_upgrade(settings, tmp_path):
    copy = tmp_path / "mine.pt"
    copy.write_bytes(SINGLE_TAIL.read_bytes())
    mine = services.embedding_model_for(embedder_name="trained", weights=str(copy))
    services.embedding_model_switch(model_id=mine.pk)
    assert services.shipped_embedder_adopt() is None
    assert services.embedding_model_active() == mine
    assert not EmbeddingModel.objects.filter(state=ModelState.BUILDING).exists()


def test_the_shipped_embedder_joins_the_seeded_lite0_tails_and_three_lite1_tails():
    shipped = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    sidecar = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert [(part["backbone"], part["members"]) for part in shipped["meta"]["parts"]] == [
        ("efficientnet-lite0", 3), ("efficientnet-lite1", 3)]
    assert tuple(shipped["projection"].shape) == (1536, 768) and shipped["meta"]["dimension"] == 768
    seeded = torch.load(SEEDED_TAILS, map_location="cpu", weights_only=True)
    for mine, theirs in zip(shipped["parts"][0], seeded["tails"], strict=True):
        assert all(torch.equal(mine[key], value) for key, value in theirs.items())
    lite1 = sidecar["metrics"]["members"][1]
    assert "--backbone efficientnet-lite1" in lite1["command"] and "--tails 1,4,2" in lite1["command"]
    assert [m["config"]["tail_seed"] for m in lite1["members"]] == [0, 1, 2]
    assert "--mixed" in sidecar["command"] and sidecar["calibration"]["thresholds"]["alpha"] == 0.5


def test_the_seeded_three_tails_are_one_run_each_with_its_own_seed():
    ensemble = torch.load(SEEDED_TAILS, map_location="cpu", weights_only=True)
    sidecar = json.loads(SEEDED_TAILS.with_suffix(".json").read_text())
    assert ensemble["meta"]["members"] == 3 and ensemble["meta"]["dimension"] == 768
    assert ensemble["meta"]["preprocessing"]["studio_mask"] == 2
    members = sidecar["metrics"]["members"]
    assert [m["config"]["confusable_cluster"] for m in members] == [1, 4, 2]
    assert [m["config"]["tail_seed"] for m in members] == [0, 1, 2]
    assert "--tails 1,4,2" in sidecar["command"] and sidecar["calibration"]["thresholds"]["alpha"] == 0.5
    projections = [tail["projection.weight"] for tail in ensemble["tails"]]
    assert not any(torch.equal(a, b) for i, a in enumerate(projections) for b in projections[i + 1:])


def test_the_earlier_three_tail_file_stays_and_holds_the_earlier_shipped_tails():
    ensemble = torch.load(THREE_TAILS, map_location="cpu", weights_only=True)
    single = torch.load(SINGLE_TAIL, map_location="cpu", weights_only=True)
    two = torch.load(TWO_TAILS, map_location="cpu", weights_only=True)
    assert ensemble["meta"]["members"] == 3 and ensemble["meta"]["dimension"] == 768
    assert all(torch.equal(ensemble["tails"][0][key], value) for key, value in single["tail"].items())
    for index in (0, 1):
        assert all(torch.equal(ensemble["tails"][index][key], value) for key, value in two["tails"][index].items())
    assert not torch.equal(ensemble["tails"][2]["projection.weight"], single["tail"]["projection.weight"])
    # the earlier files were trained and are served with the first studio mask rule, which they do not record
    assert "studio_mask" not in two["meta"]["preprocessing"] and ensemble["meta"]["preprocessing"]["studio_mask"] == 2


def test_damaged_weights_are_refused(tmp_path):
    copy = tmp_path / "copy.pt"
    copy.write_bytes(SHIPPED.read_bytes() + b"tampered")
    copy.with_suffix(".json").write_text(SHIPPED.with_suffix(".json").read_text())
    embedder = TrainedEfficientNetLite0(name="tampered", weights=str(copy), runtime="torch", threads=1)
    with pytest.raises(RuntimeError, match="checksum"):
        embedder.torch_net()


@pytest.mark.django_db
def test_a_strong_colour_cast_keeps_the_product_first(shared_data):
    from catalog.services import kind_for_text, product_image_add
    from tests import factories

    reset_embedders()
    assert get_embedder().name == "trained"
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["sub_category"] in ("Topwear", "Bottomwear")][:30]
    images = []
    for n, row in enumerate(rows):
        category = factories.category(name=row["article_type"], kind=kind_for_text(row["article_type"]) or "topwear",
                                      parent=None)
        product = factories.product(sku=f"CAST-{n}", category_obj=category)
        image, _ = product_image_add(product=product, data=(shared_data / "catalog-photos" / row["image"]).read_bytes(),
                                     filename=f"{n}.jpg", role="primary")
        images.append(image)
    services.images_embed(image_ids=[image.pk for image in images])
    misses = 0
    for n in (0, 7, 14, 21):
        original = np.asarray(Image.open(shared_data / "catalog-photos" / rows[n]["image"]).convert("RGB"), np.float32)
        red_light = Image.fromarray(np.clip(original * np.float32([1.35, 0.8, 0.7]), 0, 255).astype(np.uint8))
        result = services.match_image(red_light, segment=False, k=5)
        misses += result.candidates[0].sku != f"CAST-{n}"
    assert misses == 0


@pytest.mark.django_db
def test_scheduled_retraining_does_nothing_without_enough_new_data(settings):
    from matching.training.schedule import embedder_retrain_if_due

    settings.MATCHING = {**settings.MATCHING, "RETRAIN": {"MIN_NEW_GROUPS": 5}}
    before = EmbeddingModel.objects.count()
    outcome = embedder_retrain_if_due()
    assert outcome["trained"] is False and "0 new labelled group(s)" in outcome["reason"]
    assert EmbeddingModel.objects.count() == max(before, 1)
