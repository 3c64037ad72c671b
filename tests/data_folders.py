"""Where the tests' data is. `PUBLIC_DATA`: a few real rows of each public data set in ../shared/data's
layout (scripts/build_test_data.py; attribution in tests/data/README.md), so the suite passes with no
../shared beside the clone. `SHARED_DATA`: the full sets beside this repository's clone, which only tests
marked `shared_data` see (tests/conftest.py; tests/architecture/test_shared_data_marked.py)."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PUBLIC_DATA = TESTS / "data"
SHARED_DATA = TESTS.parents[1] / "shared" / "data"
