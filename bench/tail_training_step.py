"""Seconds per training step of the embedder's tail, in the memory layouts PyTorch offers on this CPU.

    python bench/tail_training_step.py [--threads 2] [--batch 96] [--steps 4] [--split 11]
        [--backbone efficientnet-lite1] [--json OUT.json]

One step is what ``train_embedder`` does per batch: ``--batch`` query-side and as many shop-side cached front
feature maps through the tail (blocks from ``--split`` on, head convolution, GeM, projection), a loss over their
similarities, backward and an AdamW step. The tail is built by ``network.build`` (ImageNet weights) and its
layout set explicitly for each row: contiguous (NCHW), the layout ``network.build`` trained in before, and
channels-last (NHWC), what it trains in now. The input maps are random: the time of a convolution does not
depend on the values. Prints one JSON object: seconds per step (mean of ``--steps`` after one warm-up step).
``--backbone`` times another backbone's tail at its input size, at its own split or ``--split``; its channels-last
time over Lite0's at Lite0's split is the cost that ``network.tail_cost`` records. ``--bf16`` adds a row with
the forward pass in bfloat16, as ``train_embedder --bf16`` trains.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from matching.training import network


def seconds_per_step(tail: network.Tail, features: torch.Tensor, batch: int, steps: int, bf16: bool = False) -> float:
    tail.train()
    for module in tail.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()  # as the trainer runs it: BatchNorm statistics frozen
    optimiser = torch.optim.AdamW(tail.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # as TrainConfig.bf16 runs it
            out = tail(features)
        out = F.normalize(out.float(), dim=1)
        loss = F.cross_entropy(20.0 * out[:batch] @ out[batch:].T, torch.arange(batch))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--split", type=int, default=None,
                        help="first fine-tuned block; default the backbone's stride-32 stage")
    parser.add_argument("--backbone", choices=sorted(network.BACKBONES), default=network.DEFAULT_BACKBONE)
    parser.add_argument("--bf16", action="store_true", help="also time channels-last with the forward in bfloat16")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    backbone = network.BACKBONES[args.backbone]
    split = backbone.split if args.split is None else args.split
    front, _ = network.build(split=split, backbone=args.backbone)
    size = backbone.input_size
    with torch.no_grad():  # the shape of the cached maps the tail reads: the front's output for one input
        _, channels, height, width = front(torch.zeros(1, 3, size, size)).shape
    features = torch.randn(2 * args.batch, channels, height, width)
    result = {"threads": args.threads, "batch": args.batch, "backbone": args.backbone, "split": split,
              "cpu": torch.backends.cpu.get_cpu_capability(), "native_bfloat16": network.native_bfloat16(),
              "seconds_per_step": {}}
    for layout, memory_format in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
        _, tail = network.build(split=split, backbone=args.backbone)
        tail.to(memory_format=memory_format)
        result["seconds_per_step"][layout] = round(seconds_per_step(tail, features, args.batch, args.steps), 3)
    if args.bf16:
        _, tail = network.build(split=split, backbone=args.backbone)
        tail.to(memory_format=torch.channels_last)
        result["seconds_per_step"]["channels_last_bf16"] = round(
            seconds_per_step(tail, features, args.batch, args.steps, bf16=True), 3)
    timed = result["seconds_per_step"]
    result["speed_up"] = round(timed["contiguous"] / timed["channels_last"], 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
