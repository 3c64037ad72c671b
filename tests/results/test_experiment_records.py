"""Experiment records round-trip through the store, beside the loops, and old stores read as none."""

from cai_bench.results.experiments import ExperimentRecord, VariantRecord, experiment_id_for, load_experiments
from cai_bench.results.store import Store


def test_experiment_record_round_trips_and_replaces(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    store = Store(url)
    rec = ExperimentRecord(experiment_id_for(str(tmp_path)), "seeds", {"train_seed": [0, 1]},
                           [VariantRecord("train_seed=0", {"train_seed": 0}, loop_id="a", status="done"),
                            VariantRecord("train_seed=1", {"train_seed": 1}, status="gate", reason="kept 3 of 64",
                                          gate={"kept": 3})])
    store.put_experiment(rec)
    assert load_experiments(url) == [rec]
    rec.variants[1].status = "done"
    store.put_experiment(rec)
    (back,) = load_experiments(url)
    assert back.variants[1].status == "done" and back.variants[0].values == {"train_seed": 0}


def test_a_store_without_experiments_has_none(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    Store(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # a store written before the table existed
        conn.execute("DROP TABLE experiments")
    assert load_experiments(f"sqlite:///{path}") == []
