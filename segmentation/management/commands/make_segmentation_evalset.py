"""Write held-out evaluation folders (images/ + masks/ + labels/, our class maps) for evaluate_segmentation: CCP
val photos, or composites of held-out catalogue products on held-out phone-photo backgrounds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from segmentation import conf
from segmentation.classes import ccp_lookup


class Command(BaseCommand):
    help = "Build an evaluation folder from the development data (held-out val split unless --split says otherwise)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--source", choices=["ccp", "composite"], required=True)
        parser.add_argument("--split", choices=["val", "dev", "train"], default="val",
                            help="CCP photos of this split: val (held out, the default: for figures), dev or train "
                                 "(for tuning a rule without looking at the held-out photos).")
        parser.add_argument("--out", required=True)
        parser.add_argument("--data", default=None)
        parser.add_argument("--n", type=int, default=100, help="number of composites")
        parser.add_argument("--long-side", type=int, default=480, help="composite size")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **opts) -> None:
        from segmentation import data as seg_data

        root = Path(opts["data"] or conf.default_data_dir() or "")
        out = Path(opts["out"])
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "masks").mkdir(parents=True, exist_ok=True)
        (out / "labels").mkdir(parents=True, exist_ok=True)
        written = 0
        if opts["source"] == "ccp":
            ccp = root / "ccp-masks"
            if not ccp.exists():
                raise CommandError(f"No ccp-masks under {root}")
            lookup = ccp_lookup(ccp / "label_list.csv")
            for path in sorted((ccp / "images").glob("*.jpg")):
                if seg_data.ccp_split_of(f"ccp:{path.stem}") != opts["split"]:
                    continue
                mask = ccp / "masks" / f"{path.stem}.png"
                (out / "images" / path.name).write_bytes(path.read_bytes())
                (out / "masks" / mask.name).write_bytes(mask.read_bytes())
                with Image.open(ccp / "labels" / mask.name) as raw:
                    Image.fromarray(lookup[np.asarray(raw)]).save(out / "labels" / mask.name)
                written += 1
        else:
            products = [
                p for p in seg_data.load_catalog(root / "catalog-photos", conf.work_dir() / "cache") if p.split == "val"
            ]
            _, backgrounds = seg_data.load_phone_backgrounds(root / "phone-photos", cache_dir=conf.work_dir() / "cache")
            if not products or not backgrounds:
                raise CommandError(f"Need catalog-photos/ and phone-photos/ under {root}")
            rng = np.random.default_rng(opts["seed"])
            side = opts["long_side"]
            for i in range(opts["n"]):
                h, w = (side, side * 3 // 4) if rng.random() < 0.6 else (side * 3 // 4, side)
                bg = backgrounds[int(rng.integers(len(backgrounds)))]
                image, labels = seg_data.composite(products, bg, h, w, rng)
                Image.fromarray(image).save(out / "images" / f"c{i:04d}.jpg", quality=90)
                Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(out / "masks" / f"c{i:04d}.png")
                Image.fromarray(labels).save(out / "labels" / f"c{i:04d}.png")
                written += 1
        self.stdout.write(json.dumps({"source": opts["source"], "written": written, "out": str(out)}))
