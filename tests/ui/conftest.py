from __future__ import annotations

import pytest

from tests.ui.explorer_data import explored, make_checkpoint


@pytest.fixture(scope="session")
def explorer_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("explorer"))


@pytest.fixture(scope="session")
def explorer_answer(explorer_checkpoint):
    return explored(explorer_checkpoint)
