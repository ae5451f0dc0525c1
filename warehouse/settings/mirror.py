"""The smart mirror: device keys, kiosk origins (CORS), throttling, shortlists and frame handling."""
from .env import env_bool, env_int, env_list, env_str

# Mirror devices send `Authorization: Api-Key <prefix>.<secret>` (keys are created in admin, hashed at rest).
# Only the mirror API accepts them; staff sessions are not accepted there.
MIRROR = {
    # Products shown per garment.
    "SIMILAR": env_int("STOCKMATCH_MIRROR_SIMILAR", 8),
    "COMPLETE_THE_LOOK": env_int("STOCKMATCH_MIRROR_COMPLETE", 6),
    # At most this many garments per frame, largest first (a top and a bottom); each costs a match, so latency.
    "MAX_GARMENTS": env_int("STOCKMATCH_MIRROR_MAX_GARMENTS", 2),
    # Garments smaller than this share of the shopper's region are left out (a glimpse of a shoe, a collar).
    "MIN_GARMENT_SHARE": 0.03,
    # How far the segmenter's garment class is trusted when it and the classifier disagree on the kind.
    "SEGMENTER_KIND_RELIABILITY": 0.85,
    # Similar products are all of the garment's kind once the kind is at least this sure.
    "KIND_FILTER_CONFIDENCE": 0.6,
    # Largest accepted camera frame; a 1080p JPEG is 0.3-1 MB.
    "MAX_FRAME_BYTES": env_int("STOCKMATCH_MIRROR_MAX_FRAME_BYTES", 10 * 1024 * 1024),
    # Frames are never stored unless this is on (then under MEDIA_ROOT/mirror-frames/, for debugging a kiosk).
    "KEEP_FRAMES": env_bool("STOCKMATCH_MIRROR_KEEP_FRAMES", False),
    # A shortlist sent to the fitting room disappears from its list after this many minutes.
    "SHORTLIST_MINUTES": env_int("STOCKMATCH_MIRROR_SHORTLIST_MINUTES", 30),
    "SHORTLIST_MAX_ITEMS": 12,
    # Product photos served to the mirror: long side in pixels and browser cache lifetime (content-addressed URLs).
    "IMAGE_SIZE": 640,
    "IMAGE_MAX_AGE": env_int("STOCKMATCH_MIRROR_IMAGE_MAX_AGE", 30 * 24 * 3600),
    "CURRENCY": env_str("STOCKMATCH_CURRENCY", "EUR"),
    # Colours computed per complete-the-look request for product photos not seen before (the rest are cached).
    "COLOUR_BUDGET": 48,
    # The kiosk returns to its idle screen after this many seconds without a shopper.
    "IDLE_SECONDS": env_int("STOCKMATCH_MIRROR_IDLE_SECONDS", 60),
}

# CORS: only the configured kiosk origins may call the mirror API from another origin (the kiosk page served
# by Stockmatch itself is same-origin and needs none). e.g. STOCKMATCH_KIOSK_ORIGINS=https://mirror.shop.example
CORS_ALLOWED_ORIGINS = env_list("STOCKMATCH_KIOSK_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/v1/mirror/.*$"
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 3600

from .tasks import CELERY_BEAT_SCHEDULE as _BEAT  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    **_BEAT,
    "mirror-purge-shortlists": {"task": "mirror.purge_shortlists", "schedule": 3600.0},
}
