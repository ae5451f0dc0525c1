"""Production static files: WhiteNoise's compressed, hashed storage that never turns a page into a 500.

Without ``collectstatic`` (or after a file went missing) Django's manifest storage raises while rendering
``{% static %}``, so the login page answered 500. Here a missing entry is logged and the plain name is
used: the page renders, only that asset is missing. ``make serve`` runs ``collectstatic`` first.
"""
from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            logger.error("static file %s is not collected: run `manage.py collectstatic` (make serve does)", name)
            return name
