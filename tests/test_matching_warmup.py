"""A starting process loads its models before its first request: the web process (wsgi) and Celery's workers."""
import importlib
import time

import pytest
from django.test import override_settings

from matching import warmup
from matching.appearance import joint_with
from matching.embedders import reset_embedders
from matching.mirror.services import mirror_key_create, mirror_keys_revoke
from matching.services import embedder_for, embedding_model_active
from segmentation.segmenter import _state as segmenter_state
from segmentation.segmenter import reset_segmenter
from tests.celery_worker import running_worker


def _served_embedder():
    return embedder_for(embedding_model_active())


@pytest.fixture
def cold_process():
    reset_embedders()
    reset_segmenter()
    yield
    reset_embedders()
    reset_segmenter()


@pytest.mark.django_db
def test_web_warms_the_mirror_only_while_a_device_key_is_valid():
    # tests run tasks in-process, and no kiosk has a key
    assert warmup.parts_to_warm("web") == [warmup.URLS, warmup.INTAKE]
    key, _ = mirror_key_create(name="Mirror 1")
    assert warmup.parts_to_warm("web") == [warmup.URLS, warmup.INTAKE, warmup.MIRROR]
    mirror_keys_revoke(key_ids=[key.id])
    assert warmup.parts_to_warm("web") == [warmup.URLS, warmup.INTAKE]
    assert warmup.parts_to_warm("worker") == [warmup.INTAKE]
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        assert warmup.parts_to_warm("web") == [warmup.URLS]  # a broker runs intake elsewhere
    with override_settings(STOCKMATCH_WARM_UP=False):
        assert warmup.parts_to_warm("worker") == []


@pytest.mark.slow
@pytest.mark.django_db
def test_mirror_warm_up_loads_every_model_a_capture_needs(cold_process):
    assert "segmenter" not in segmenter_state and joint_with(_served_embedder())._runner is None

    seconds = warmup.warm_up([warmup.MIRROR])

    assert set(seconds) == {warmup.MIRROR} and seconds[warmup.MIRROR] > 0
    assert segmenter_state["segmenter"] is not None  # the shipped weights, loaded
    joint = joint_with(_served_embedder())
    assert joint is not None and joint._runner is not None  # the mirror's one pass for matching and appearance


@pytest.mark.django_db
def test_a_part_that_fails_is_logged_and_the_rest_still_warm(cold_process, monkeypatch, caplog):
    def broken(frame):
        raise OSError("weights file missing")

    monkeypatch.setitem(warmup.WARMERS, "broken", broken)
    seconds = warmup.warm_up(["broken", warmup.INTAKE])

    assert list(seconds) == [warmup.INTAKE]
    assert "warm-up of broken failed" in caplog.text and "weights file missing" in caplog.text
    assert _served_embedder()._loaded


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_wsgi_application_warms_before_its_first_request(cold_process):
    import warehouse.wsgi

    mirror_key_create(name="Mirror 1")
    importlib.reload(warehouse.wsgi)  # what a starting web process does

    assert _served_embedder()._loaded
    assert joint_with(_served_embedder())._runner is not None
    assert segmenter_state["segmenter"] is not None


@pytest.mark.slow
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_celery_worker_warms_intake_when_it_starts(tmp_path, pool):
    log = tmp_path / "worker.log"
    with running_worker(log, pool=pool, env={"STOCKMATCH_WARM_UP": "1"}):
        deadline = time.monotonic() + 120
        while "warmed up intake" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
    text = log.read_text()
    assert "warmed up intake" in text, text[-3000:]
    assert "warm-up of" not in text  # no part failed
