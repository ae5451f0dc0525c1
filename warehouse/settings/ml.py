"""Model registries and inference settings (embedders, segmenters, matching)."""
from pathlib import Path

from .env import BASE_DIR, DATA_DIR, env_bool, env_int, env_str

STOCKMATCH_TORCH_THREADS = env_int("STOCKMATCH_TORCH_THREADS", 2)
STOCKMATCH_MODELS_DIR = BASE_DIR / "models"  # committed, versioned weights shipped with the code
STOCKMATCH_TRAINED_DIR = DATA_DIR / "models"  # weights trained on this installation, exported ONNX caches
# The embedder trained on real shop <-> worn pairs ships in models/embedder/ (``manage.py train_embedder``): three
# trained tails on the ImageNet Lite0 front and three on the Lite1 front, joined and projected to 768-d on catalogue
# photos, studio mask rule 2 (docs/matching.md, "Two backbones"). The earlier files stay beside it for installations
# still serving them (``services.shipped_embedder_adopt`` moves them over after ``migrate``); the ImageNet backbone
# ("default") stays the fallback when the weights are missing.
SHIPPED_EMBEDDER_WEIGHTS = STOCKMATCH_MODELS_DIR / "embedder" / "efficientnet-lite0+lite1-ft256x6p768.pt"
# The "trained" embedder's weights file; another one (an installation's fine-tune) is judged with
# STOCKMATCH_EMBEDDER_WEIGHTS=FILE manage.py evaluate_matching ... (a version is still promoted by train_embedder).
TRAINED_EMBEDDER_WEIGHTS = env_str("STOCKMATCH_EMBEDDER_WEIGHTS", str(SHIPPED_EMBEDDER_WEIGHTS))
EMBEDDER_NAME = env_str("STOCKMATCH_EMBEDDER", "trained" if SHIPPED_EMBEDDER_WEIGHTS.exists() else "default")
# The heads' appearance tails (``manage.py train_attributes``): a tail of the ImageNet Lite1 front and two of the Lite2
# front, fine-tuned on labelled catalogue and phone photos to carry garment kind and gender, side by side in one file
# served at Lite1's 240 px, so that the mirror runs its Lite1 part on the matching pass's front (docs/matching.md, "An
# appearance tail trained for the heads", "A Lite1 appearance tail", "Lite1 and Lite2 tails side by side" and "A second
# Lite2 tail beside them"). Without the file the heads read the ImageNet backbone's vector ("default").
SHIPPED_ATTRIBUTES_WEIGHTS = STOCKMATCH_MODELS_DIR / "attributes" / "efficientnet-lite1+lite2-attr256x3.pt"
# The shipped segmenter's folder (weights + sidecar, ``manage.py ship_segmenter``). Another folder judges a candidate
# through every command that builds a throwaway database (its migrations adopt the folder's sidecar), e.g.
# STOCKMATCH_SEGMENTER_DIR=var/candidate manage.py evaluate_matching ...
STOCKMATCH_SEG_SHIPPED_DIR = Path(env_str("STOCKMATCH_SEGMENTER_DIR", str(STOCKMATCH_MODELS_DIR / "segmenter")))
# `auto` without hints keeps the network's sure pixels at its size, GrabCut settles only the uncertain band
# (docs/segmentation.md, "Pipeline"): better cut-outs, off until the embedder is trained on them.
STOCKMATCH_SEG_AUTO_KEEPS_SURE = env_bool("STOCKMATCH_SEG_AUTO_KEEPS_SURE", False)
# Where the served segmenter runs: "auto" is OpenVINO (in float32, on every CPU) where it loads, else
# ONNX Runtime; also "openvino", "onnx", "torch" (segmentation/exported.py).
STOCKMATCH_SEG_RUNTIME = env_str("STOCKMATCH_SEG_RUNTIME", "auto")
# Seconds between a process's checks of which segmenter version is active (a new one is loaded without restart).
STOCKMATCH_SEG_VERSION_CHECK_SECONDS = env_int("STOCKMATCH_SEG_VERSION_CHECK_SECONDS", 10)

# Embedding backbones, resolved by name like Django's STORAGES. "RUNTIME": "auto" (default: OpenVINO in bfloat16 where
# the CPU computes it natively, about twice ONNX Runtime's speed there, else ONNX Runtime), "onnx" (~4x faster than
# PyTorch on CPU), "openvino" (both run the ONNX file exported once per weights checksum into STOCKMATCH_TRAINED_DIR)
# or "torch"; matching.embedders.runtimes. "POOLING": "gem"
# (generalised mean, p = GEM_P; measured best, docs/matching.md) or "avg". "CONTEXT_VIEW": each photo's vector
# is the mean of its garment view and its context view, on both sides (docs/matching.md, "Two views").
STOCKMATCH_EMBED_RUNTIME = env_str("STOCKMATCH_EMBED_RUNTIME", "auto")  # also where training runs the frozen fronts
# Web and Celery worker processes load and run their models once when they start (matching/warmup.py), so the
# first request after a restart is as quick as the next.
STOCKMATCH_WARM_UP = env_bool("STOCKMATCH_WARM_UP", True)
EMBEDDERS = {
    "trained": {
        "BACKEND": "matching.embedders.TrainedEfficientNetLite0",
        "OPTIONS": {"RUNTIME": STOCKMATCH_EMBED_RUNTIME, "WEIGHTS": TRAINED_EMBEDDER_WEIGHTS,
                    "BATCH_SIZE": 32, "CONTEXT_VIEW": env_bool("STOCKMATCH_EMBED_CONTEXT_VIEW", True)},
    },
    "attributes": {
        "BACKEND": "matching.embedders.TrainedEfficientNetLite0",
        "OPTIONS": {"RUNTIME": STOCKMATCH_EMBED_RUNTIME,
                    "WEIGHTS": env_str("STOCKMATCH_ATTRIBUTES_WEIGHTS", str(SHIPPED_ATTRIBUTES_WEIGHTS)),
                    "BATCH_SIZE": 32},
    },
    "default": {
        "BACKEND": "matching.embedders.EfficientNetLite0",
        "OPTIONS": {"RUNTIME": STOCKMATCH_EMBED_RUNTIME, "POOLING": "gem", "GEM_P": 3.0,
                    "BATCH_SIZE": 32},
    },
    "efficientnet_lite0_torch": {
        "BACKEND": "matching.embedders.EfficientNetLite0",
        "OPTIONS": {"RUNTIME": "torch", "POOLING": "gem", "GEM_P": 3.0, "BATCH_SIZE": 32},
    },
    "efficientnet_lite0_avg": {
        "BACKEND": "matching.embedders.EfficientNetLite0",
        "OPTIONS": {"RUNTIME": STOCKMATCH_EMBED_RUNTIME, "POOLING": "avg", "BATCH_SIZE": 32},
    },
}

MATCHING = {
    # Used until `manage.py calibrate_matching` stores thresholds on the active EmbeddingModel.
    "DEFAULT_THRESHOLD": 0.80,
    "DEFAULT_MARGIN": 0.0,
    # The smallest margin (top product over the next) a calibration may choose. Real pairs, which the shipped
    # thresholds are fitted on, hold no near-twins (each top is unique); a catalogue does (one cut in several
    # colours), and a margin of 0 lets the decision pick between twins (docs/matching.md, stop 27: one wrong SKU
    # on the demo at margin 0, none at 0.03). 0.03 is also the smallest margin earlier calibrations chose.
    "MIN_MARGIN": 0.03,
    # Catalogue embedding batch size (Celery task and embed_catalog).
    "EMBED_BATCH_SIZE": env_int("STOCKMATCH_EMBED_BATCH_SIZE", 64),
    # Images re-embedded per run of the background build task (it re-queues itself; ~1 min per chunk).
    "BUILD_CHUNK": env_int("STOCKMATCH_EMBED_BUILD_CHUNK", 2000),
    # Filtered searches the planner expects to keep at most this many images are answered exactly (B-tree
    # + exact distances); wider ones use HNSW (a kind's partial index, iterative scans). See docs/matching.md.
    "EXACT_SEARCH_MAX_ROWS": env_int("STOCKMATCH_EXACT_SEARCH_MAX_ROWS", 3000),
    # 100k clustered vectors: ef 40 recall@10 0.93, 80 0.99, 120 0.991 (p95 11-13 ms, loaded machine).
    "HNSW_EF_SEARCH": env_int("STOCKMATCH_HNSW_EF_SEARCH", 120),
    # Long side of the working image handed to segmentation in match_image().
    "WORKING_SIZE": env_int("STOCKMATCH_MATCH_WORKING_SIZE", 768),
    # Several photos of one item: "max" (search each, keep each product's best score) or "mean" (average the
    # unit vectors, one search). Measured by bench/measure_fusion.py: max 0.94 recall@1, mean 0.90, one photo 0.87.
    "FUSION": "max",
    # Colour re-ranking (matching/colour.py): the first DEPTH products of each search lose
    # CHROMA * (1 - chroma similarity) + LIGHTNESS * (1 - lightness similarity) of the garment's colour histogram.
    # Held-out pairs recall@1 0.724 -> 0.760, demo 29 -> 34 of 40 first (docs/matching.md); 0 and 0 turn it off.
    "COLOUR": {
        "CHROMA": float(env_str("STOCKMATCH_MATCH_COLOUR_CHROMA", "0.15")),
        "LIGHTNESS": float(env_str("STOCKMATCH_MATCH_COLOUR_LIGHTNESS", "0.05")),
        "DEPTH": env_int("STOCKMATCH_MATCH_COLOUR_DEPTH", 20),
    },
    # The "in catalogue" decision's open-set score: top - ALPHA * mean(scores of ranks 2-10); a known product stands
    # out from its neighbours. Calibrations fit their threshold on it and record ALPHA (matching/calibration.py).
    # Held-out pairs AUROC 0.771 -> 0.790 at 0.5, chosen on the validation pairs (docs/matching.md); 0: top score.
    "OPEN_SET_ALPHA": float(env_str("STOCKMATCH_MATCH_OPEN_SET_ALPHA", "0.5")),
    # Calibration keeps the best recall whose precision is at least TARGET_PRECISION with PRECISION_CONFIDENCE (the
    # one-sided Wilson lower bound; 0: the precision seen). On the point estimate, the 172 validation pairs picked a
    # threshold stated 0.95 that read 0.86 on the held-out ones; at 0.8 confidence it reads 0.98 (docs/matching.md).
    "TARGET_PRECISION": float(env_str("STOCKMATCH_MATCH_TARGET_PRECISION", "0.95")),
    "PRECISION_CONFIDENCE": float(env_str("STOCKMATCH_MATCH_PRECISION_CONFIDENCE", "0.8")),
    # Embed new catalogue photos after commit (Celery; in-process when no broker is configured).
    "AUTO_EMBED": True,
    # Scheduled retraining (STOCKMATCH_RETRAIN_EVERY_HOURS): pair files to train and judge on, catalogue-photo CSVs.
    "RETRAIN": {
        "MIN_NEW_GROUPS": env_int("STOCKMATCH_RETRAIN_MIN_NEW", 200),
        "PAIR_FILES": [p for p in env_str("STOCKMATCH_RETRAIN_PAIR_FILES", "").split(",") if p],
        "PHOTO_CSVS": [p for p in env_str("STOCKMATCH_RETRAIN_PHOTO_CSVS", "").split(",") if p],
        "TIME_BUDGET_MINUTES": env_int("STOCKMATCH_RETRAIN_MINUTES", 60),
    },
    # Decided intake matches for `calibrate_matching` (a selector of the intake app; matching never imports it).
    "CALIBRATION_SOURCE": "warehouse.selectors.match_outcomes",
    # Gender / category-kind classification without a trained head: vote of the k nearest catalogue products,
    # each weighted exp((score - best) / temperature) (matching/classification.py).
    "CLASSIFY_KNN_K": env_int("STOCKMATCH_CLASSIFY_KNN_K", 15),
    "CLASSIFY_KNN_TEMPERATURE": 0.05,
    # Heads read the embedding and, beside it, this embedder's vector of the same views ("appearance": what the
    # matching embedder trained away of the garment kind). "attributes": the shipped tail trained for kind and
    # gender (phone kind 0.88 -> 0.89, catalogue kind 0.984 -> 0.994 against the ImageNet backbone, "default";
    # docs/matching.md, "An appearance tail trained for the heads"); "" trains heads on the embedding alone.
    "CLASSIFY_APPEARANCE": env_str("STOCKMATCH_CLASSIFY_APPEARANCE",
                                   "attributes" if SHIPPED_ATTRIBUTES_WEIGHTS.exists() else "default"),
}
