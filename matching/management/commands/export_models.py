"""``manage.py export_models``: export the served networks to ONNX ahead of the first request.

Each exported file is made on first use and kept by weights checksum in ``STOCKMATCH_TRAINED_DIR/onnx``. Its first
user otherwise waits for the export and its check against PyTorch: about 12 s for the joint matching-and-appearance
pass, which is a shopper's first capture at a mirror. Run it after installing or upgrading, and after activating a
new embedding model (``make demo`` runs it). Idempotent: a file already exported is kept.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand

from matching import appearance, services


class Command(BaseCommand):
    help = "Export the active embedder, the appearance embedder and their joint pass to ONNX (once per weights file)."

    def handle(self, *args, **options) -> None:
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
