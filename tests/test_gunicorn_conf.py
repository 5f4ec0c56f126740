"""gunicorn.conf.py: what a web worker does before its first request."""

from __future__ import annotations

import gc
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from recommender import catalog_store

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


@pytest.mark.django_db
def test_a_worker_loads_the_index_and_store_then_freezes_what_it_loaded(small_catalog) -> None:
    # given the configuration gunicorn reads
    conf = runpy.run_path(str(CONF))
    catalog_store.store_clear()
    worker = SimpleNamespace(log=logging.getLogger("gunicorn.error"))
    try:
        # when a worker has started
        conf["post_worker_init"](worker)
        # then the catalog store is loaded, the API's JSON of every card is written, and what
        # was loaded is out of the collector's walks
        snapshot = catalog_store._store._snapshot
        assert snapshot is not None
        assert [cache.filled for cache in snapshot.derived.values()] == [len(snapshot)]
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
    assert conf["worker_class"] == "sync"
