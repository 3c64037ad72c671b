"""Per-culture validation: the built-in red-team pair suites (220 South African, 330
Romanian), `--by culture|language`, the seeded default sample, stored per culture."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.harness.scorers import MetricSpec, Scorer, ScoreRow
from cai_bench.validity import session
from cai_bench.validity import store as vstore
from cai_bench.validity.suites import DEFAULT_SUITES, get_suite


class CultureToy(Scorer):
    """Knows South Africa's aligned answers (the task's references) and nothing of Romania's:
    right on ZA pairs, a constant (chance) on RO pairs."""

    id = "culture_toy"
    metrics = (MetricSpec("adherence", "higher", 0.0, 1.0),)

    def load(self) -> None:
        from cai_bench.tasks import load_task

        self.known = {p.reference for p in load_task("cai_south_africa").prompts}

    def score(self, batch):
        return [ScoreRow.ok(x.key, "adherence", 1.0 if x.response in self.known
                            else 0.5 if x.task_id == "cai_romania" else 0.0) for x in batch]


@pytest.fixture()
def culture_toy(monkeypatch):
    from cai_bench.harness.scorers import SCORERS

    monkeypatch.setitem(SCORERS, "culture_toy", CultureToy)
    return "culture_toy"


def test_per_culture_suites_load_with_the_right_counts():
    za, ro, both = (get_suite(n).load(None) for n in ("redteam-pairs-za", "redteam-pairs-ro", "redteam-pairs"))
    assert (len(za), len(ro), len(both)) == (220, 330, 550)
    assert {p.meta["culture"] for p in za} == {"ZA"} and {p.meta["culture"] for p in ro} == {"RO"}
    assert len({p.id for p in both}) == 550
    assert all(p.better != p.worse and p.meta["constitution_id"] for p in both)
    assert get_suite("redteam-pairs-za").culture == "ZA" and get_suite("redteam-pairs").culture is None
    assert {"redteam-pairs-za", "redteam-pairs-ro"} <= set(DEFAULT_SUITES)


def test_split_by_culture_and_language():
    targets, _ = session.suite_targets(["redteam-pairs"], None)
    parts = session.split_targets(targets, "culture")
    assert [(t.name, len(t.items), t.culture) for t in parts] == [
        ("redteam-pairs[culture=RO]", 330, "RO"), ("redteam-pairs[culture=ZA]", 220, "ZA")]
    assert [t.stored_name for t in parts] == ["redteam-pairs[culture=RO]", "redteam-pairs[culture=ZA]"]
    lang = session.split_targets(targets, "language")
    assert [(t.name, len(t.items), t.culture) for t in lang] == [("redteam-pairs[language=en]", 550, None)]
    za, _ = session.suite_targets(["redteam-pairs-za"], None)
    assert za[0].stored_name == "redteam-pairs-za[culture=ZA]"
    assert session.culture_of("redteam-pairs[culture=ZA][40/220]") == "ZA" and session.culture_of("hhh-pairs") is None
    from cai_bench.validity.suites import Pair

    bare = session.Target("mine", "pairwise", [Pair("1", "q", "a", "b")], {}, "bad")
    with pytest.raises(UserError, match="suite 'mine': 1 of 1 rows have no 'culture' column"):
        session.split_targets([bare], "culture")


def test_the_sample_is_seeded_and_40_by_default():
    assert session.parse_sample(None) == 40 and session.parse_sample("all") is None
    assert session.parse_sample("12") == 12
    with pytest.raises(UserError, match="--sample 'x'"):
        session.parse_sample("x")
    items = list(range(220))
    assert session.subsample(items, 40, 0) == session.subsample(items, 40, 0)
    assert session.subsample(items, 40, 0) != session.subsample(items, 40, 1)
    assert session.subsample(items, None, 0) == items


def test_validate_by_culture_stores_one_validation_per_culture(tmp_path, culture_toy):
    store = tmp_path / "r.sqlite"
    res = CliRunner().invoke(app, ["scorers", "validate", "culture_toy", "--suite", "redteam-pairs", "--by",
                                   "culture", "--metric", "adherence", "--store", str(store)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "redteam-pairs[culture=ZA][40/220]" in out and "redteam-pairs[culture=RO][40/330]" in out
    per = vstore.latest_per_culture(f"sqlite:///{store}")
    h = CultureToy().config_hash
    za, ro = per[("culture_toy", h, "adherence", "ZA")], per[("culture_toy", h, "adherence", "RO")]
    assert (za.n_total, za.value, za.flagged) == (40, 1.0, False)
    assert ro.n_total == 40 and ro.flagged  # a constant: at chance for Romania
    res = CliRunner().invoke(app, ["scorers", "validate", "culture_toy", "--suite", "redteam-pairs-za",
                                   "--metric", "adherence", "--sample", "all", "--no-store"])
    assert res.exit_code == 0 and "redteam-pairs-za[culture=ZA]" in res.output and "[40/" not in res.output
    assert "220 of 220" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["scorers", "validate", "culture_toy", "--suite", "redteam-pairs", "--by", "x"])
    assert res.exit_code == 2 and "--by 'x': expected culture or language" in res.output
