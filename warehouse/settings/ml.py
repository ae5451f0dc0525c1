"""Model registries and inference settings (embedders, segmenters)."""
from .env import BASE_DIR, DATA_DIR, env_int, env_str

STOCKMATCH_TORCH_THREADS = env_int("STOCKMATCH_TORCH_THREADS", 2)
STOCKMATCH_MODELS_DIR = BASE_DIR / "models"  # committed, versioned weights shipped with the code
STOCKMATCH_TRAINED_DIR = DATA_DIR / "models"  # weights trained on this installation
EMBEDDER_NAME = env_str("STOCKMATCH_EMBEDDER", "efficientnet_lite0")
