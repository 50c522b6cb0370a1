"""A link's values cannot break a page: ?seed=inf (Streamlit's own binding would take int(inf))
and other non-finite or huge numbers fall back to the default."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


@pytest.mark.parametrize("seed", ["inf", "-inf", "1e400", "nan", "9" * 40])
def test_a_non_finite_or_huge_seed_in_a_link_shows_the_default(seed):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.query_params.update(seed=seed, n_data="inf", h="-inf")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["seed"] == 0 and at.session_state["n_data"] == 1000
    assert "seed" not in at.query_params
