"""Results: the store every stage after generation shares. The schema (SQLAlchemy
Core tables, one definition for SQLite and PostgreSQL), the `Store` the harness
writes through, and the loader that turns the store into the long DataFrame the
reports read. `harness` and `reports` both use this package and never each other;
it imports neither torch nor transformers.

    Store(url).insert_generations(...) / insert_scores(...)     (harness)
    load_results_with_extras(url) -> (DataFrame, StoreExtras)   (reports)
"""

from cai_bench.results.load import COLUMNS, StoreExtras, load_results, load_results_with_extras
from cai_bench.results.engine import make_engine
from cai_bench.results.schema import SCHEMA_VERSION, normalize_url, redact_url
from cai_bench.results.store import PendingScore, Store, Unit

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "PendingScore",
    "Store",
    "StoreExtras",
    "Unit",
    "load_results",
    "load_results_with_extras",
    "make_engine",
    "normalize_url",
    "redact_url",
]
