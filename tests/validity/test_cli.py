"""`cai-bench scorers validate` end to end on a registered toy scorer: the table,
the counts, the store rows keyed by config hash, the warnings, input errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.validity import store as vstore


def labelled(tmp_path, n=40):
    p = tmp_path / "labelled.jsonl"
    p.write_text("".join(json.dumps({"id": i, "prompt": "q", "response": "BAD" if i % 2 else "fine",
                                     "harmful": i % 2}) + "\n" for i in range(n)))
    return p


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_validate_against_file_stores_by_config_hash(tmp_path, toy_registered):
    f = labelled(tmp_path)
    store = tmp_path / "r.sqlite"
    res = invoke("scorers", "validate", "toy", "--against", str(f), "--label", "harmful", "--metric",
                 "harmlessness", "--store", str(store), "--json", str(tmp_path / "v.json"))
    assert res.exit_code == 0, res.output
    assert "AUC 1.00 [1.00, 1.00]" in res.output and "40 of 40 valid" in res.output
    assert "tp 20, fp 0, tn 20, fn 0" in res.output
    from validity_toy import ToyScorer

    h = ToyScorer().config_hash
    got = vstore.latest(f"sqlite:///{store}")
    v = got[("toy", h, "harmlessness")]
    assert (v.suite, v.n_total, v.n_valid, v.value, v.verdict) == ("labelled.jsonl", 40, 40, 1.0, "agrees")
    assert not v.flagged
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved[0]["agreement"]["figures"]["kappa"]["value"] == 1.0

    # another config of the same scorer is a different key; a chance-level one is flagged
    res = invoke("scorers", "validate", "toy", "--against", str(f), "--label", "harmful", "--metric",
                 "harmlessness", "--scorer-set", "mode=constant", "--store", str(store))
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "at chance level" in res.output
    got = vstore.latest(f"sqlite:///{store}")
    const = got[("toy", ToyScorer({"mode": "constant"}).config_hash, "harmlessness")]
    assert const.flagged and "do not trust its ranking" in const.warning()
    assert not got[("toy", h, "harmlessness")].flagged


def test_unscored_rows_show_in_the_counts(tmp_path, toy_registered):
    res = invoke("scorers", "validate", "toy", "--against", str(labelled(tmp_path, 80)), "--label", "harmful",
                 "--scorer-set", "mode=flaky", "--no-store")
    assert res.exit_code == 0, res.output
    assert "40 of 80 valid (40 unscored)" in res.output
    assert "toy.refused" in res.output  # every metric without --metric


def test_suite_with_data_and_limit(tmp_path, toy_registered, sample_data):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "rows.jsonl").write_text((tmp_path / "x").name and labelled(tmp_path).read_text())
    (folder / "suite.yaml").write_text("name: mine\nkind: binary\ndata: rows.jsonl\nlabel: harmful\n"
                                       "metrics: {toy: [harmlessness]}\n")
    res = invoke("scorers", "validate", "toy", "--suite", str(folder), "--limit", "12", "--no-store")
    assert res.exit_code == 0, res.output
    assert "mine[12/40]" in res.output and "12 of 12 valid" in res.output
    res = invoke("scorers", "validate", "toy", "--suite", "hhh-pairs", "--data", str(sample_data), "--no-store")
    assert res.exit_code == 1 and "validates no metric of toy" in res.output


def test_bad_input_is_one_line_exit_2(tmp_path, toy_registered):
    f = labelled(tmp_path)
    res = invoke("scorers", "validate", "toy", "--against", str(f), "--label", "nope")
    assert res.exit_code == 2 and "label column 'nope' not found (columns: id, prompt, response, harmful)" in res.output
    res = invoke("scorers", "validate", "toy", "--against", str(f))
    assert res.exit_code == 2 and "--label COLUMN" in res.output
    res = invoke("scorers", "validate", "toy", "--against", str(f), "--label", "harmful", "--metric", "x")
    assert res.exit_code == 2 and "has no metric 'x'" in res.output
    res = invoke("scorers", "validate", "nope", "--suite", "default")
    assert res.exit_code == 2 and "unknown scorer 'nope'" in res.output
    res = invoke("scorers", "validate", "toy", "--against", str(f), "--label", "harmful", "--scorer-set", "mode=odd")
    assert res.exit_code == 2 and "mode" in res.output
    assert "Traceback" not in res.output


def test_all_on_the_default_suites_says_why_each_is_skipped(tmp_path, toy_registered, sample_data, monkeypatch):
    home = tmp_path / "home"
    folder = home / "suites" / "mine"
    folder.mkdir(parents=True)
    (folder / "rows.jsonl").write_text(labelled(tmp_path).read_text())
    (folder / "suite.yaml").write_text("name: mine\nkind: binary\ndata: rows.jsonl\nlabel: harmful\n"
                                       "metrics: {toy: [harmlessness, refused]}\n")
    monkeypatch.setenv("CAI_BENCH_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    res = invoke("scorers", "validate", "all", "--suite", "default", "--suite", "mine", "--data", str(sample_data),
                 "--scorer-set", "judge.host=http://127.0.0.1:9", "--store", str(tmp_path / "r.sqlite"))
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())  # stderr lines wrap at the terminal width
    assert "toy.harmlessness on mine: AUC 1.00" in out and "toy.refused on mine" in out
    assert "skipped every scorer on stsb" in out and "sts-test.csv" in out
    assert "skipped judge: unavailable" in out and "skipped moderation: unavailable" in out
    assert "skipped toy on harmful-vs-ethical: suite 'harmful-vs-ethical' validates no metric of toy" in out
    assert "stored 2 validation(s)" in out
