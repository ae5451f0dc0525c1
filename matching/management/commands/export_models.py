"""``manage.py export_models``: export the served networks (segmenter and embedders) to ONNX ahead of the first request.

Each exported file is made on first use and kept by weights checksum in ``STOCKMATCH_TRAINED_DIR/onnx``. Its first
user otherwise waits for the export and its check against PyTorch: about 12 s for the joint matching-and-appearance
pass, which is a shopper's first capture at a mirror. Run it after installing or upgrading, and after activating a
new embedding model (``make demo`` runs it). Idempotent: a file already exported is kept.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand

from matching import appearance, services


class Command(BaseCommand):
    help = ("Export the served segmenter, the active embedder, the appearance embedder and their joint pass to ONNX "
            "(once per weights file).")

    def handle(self, *args, **options) -> None:
        self._segmenter()
        embedder = services.embedder_for(services.embedding_model_active())
        if embedder.runtime == "torch":
            self.stdout.write("The embedders run on PyTorch here: nothing to export.")
            return
        served = [("matching", embedder), ("appearance", appearance.appearance_embedder()),
                  ("matching + appearance", appearance.joint_with(embedder))]
        for role, network in served:
            if network is None:
                continue
            path = network.export_onnx()
            self.stdout.write(f"{role}: {network.version} -> {path}")

    def _segmenter(self) -> None:
        from segmentation.segmenter import get_segmenter

        segmenter = get_segmenter()  # loading it exports it (``segmentation.exported``)
        if segmenter is None:
            self.stdout.write("No segmenter loads here: intake cuts with GrabCut alone.")
        elif segmenter.runtime == "torch":
            self.stdout.write(f"segmenter: {segmenter.version} runs on PyTorch here")
        else:
            self.stdout.write(f"segmenter: {segmenter.version} -> {segmenter.onnx_path} ({segmenter.runtime})")
