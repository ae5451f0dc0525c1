"""Shared fixtures: real Postgres + pgvector (embedded by default), real images, per-test media root."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
# a git worktree elsewhere points at the photos with STOCKMATCH_SHARED_DATA
SHARED_DATA = Path(os.environ.get("STOCKMATCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"Development photos expected at {SHARED_DATA} (see README: Tests)")
    return SHARED_DATA


def jpeg_bytes(width: int = 64, height: int = 48, colour=(200, 30, 30), **save_kwargs) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    array = np.asarray(image).copy()
    array[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (20, 20, 220)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90, **save_kwargs)
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def make_jpeg():
    return jpeg_bytes
