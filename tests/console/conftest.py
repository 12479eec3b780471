from __future__ import annotations

import pytest

from tests.console.helpers import make_harness


@pytest.fixture()
def console(database, redis_url):
    harness = make_harness(database, redis_url)
    yield harness
    harness.deps.database.close()
