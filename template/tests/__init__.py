"""The multi-instance test suite: real instances, one shared store, one user story a test."""

import pytest

# The suite's shared modules assert like its tests, so their failures are explained the same way.
pytest.register_assert_rewrite("tests.browser", "tests.cluster")
