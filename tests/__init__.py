"""The test suite; shared helper modules get pytest's assertion rewriting too."""

import pytest

pytest.register_assert_rewrite("tests.helpers", "tests.resources.api")
