"""Built-in suites read the real public files (../shared/data, else the samples
here); user suite folders; --against files; clear errors on bad input."""

from __future__ import annotations

import json

import pytest

from cai_bench.errors import UserError
from cai_bench.validity import suites
from cai_bench.validity.suites import get_suite, read_labelled, read_pairs, read_table


@pytest.mark.shared_data  # the full files where ../shared/data is beside the clone, else the samples
def test_harmful_vs_ethical(suite_data):
    rows = get_suite("harmful-vs-ethical").load(suite_data)
    labels = [r.label for r in rows]
    assert set(labels) == {0.0, 1.0} and sum(labels) == len(rows) / 2  # balanced in the file and the sample
    assert len(rows) in (24, 254)
    r = rows[0]
    assert "Assistant:" not in r.response and "Choose the option" not in r.response and r.response
    assert not r.prompt.startswith("Here is a conversation")


@pytest.mark.shared_data  # the full files where ../shared/data is beside the clone, else the samples
def test_hhh_pairs(suite_data):
    pairs = get_suite("hhh-pairs").load(suite_data)
    assert len(pairs) in (16, 438)
    assert all(p.better != p.worse and p.prompt for p in pairs)


@pytest.mark.shared_data  # the full files where ../shared/data is beside the clone, else the samples
def test_jigsaw_drops_unlabelled_test_rows(sample_data, suite_data):
    rows = get_suite("jigsaw-toxic").load(sample_data)
    assert len(rows) == 24 + 4 and sum(r.label for r in rows) == 6 + 1  # the two -1 rows are left out
    full = get_suite("jigsaw-toxic").load(suite_data)
    assert len(full) in (28, 308)
    assert "optimistic" in get_suite("jigsaw-toxic").caveat


def test_stsb_reads_both_layouts(tmp_path):
    (tmp_path / "a.csv").write_text("sentence1,sentence2,score\nA cat.,A cat sits.,4.2\nX,Y,0\n")
    (tmp_path / "sts-test.csv").write_text("main-captions\tMSRvid\t2012test\t0001\t5.000\tA girl.\tA girl!\n")
    assert [r.label for r in suites.load_stsb([tmp_path / "a.csv"])] == [4.2, 0.0]
    (r,) = suites.load_stsb([tmp_path / "sts-test.csv"])
    assert (r.response, r.reference, r.label) == ("A girl.", "A girl!", 5.0)


def test_missing_data_offline_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="downloads are off.*--data PATH.*HarmfulVsEthical.jsonl"):
        get_suite("harmful-vs-ethical").load()
    with pytest.raises(UserError, match="no file named HarmfulVsEthical.jsonl"):
        get_suite("harmful-vs-ethical").load(tmp_path)
    with pytest.raises(UserError, match="unknown suite 'nope'; known: harmful-vs-ethical"):
        get_suite("nope")


def test_user_suite_folder_is_registered(tmp_path, monkeypatch):
    folder = tmp_path / "suites" / "mine"
    folder.mkdir(parents=True)
    (folder / "rows.jsonl").write_text("".join(json.dumps({"prompt": "q", "response": r, "unsafe": y}) + "\n"
                                              for r, y in [("BAD", True), ("ok", False)]))
    (folder / "suite.yaml").write_text("name: mine\nkind: binary\ndata: rows.jsonl\nlabel: unsafe\n"
                                       "metrics: {toy: [harmlessness]}\ncaveat: tiny\n")
    monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path))
    s = get_suite("mine")
    assert s.metrics == {"toy": ("harmlessness",)} and s.positive_is == "bad"
    assert [r.label for r in s.load()] == [1.0, 0.0]
    assert get_suite(str(folder)).name == "mine"
    (folder / "suite.yaml").write_text("name: mine\nkind: ranked\ndata: rows.jsonl\nmetrics: {}\n")
    with pytest.raises(UserError, match=r"suite.yaml: field 'kind' must be binary, graded or pairwise"):
        get_suite("mine")


def test_against_file_rows(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("prompt,response,harmful\nq,a,yes\nq,b,no\n")
    rows = read_labelled(read_table(p), p, "harmful")
    assert [r.label for r in rows] == [1.0, 0.0]
    graded = tmp_path / "g.jsonl"
    graded.write_text('{"prompt":"q","response":"a","rating":3.5}\n{"prompt":"q","response":"b","rating":1}\n')
    assert [r.label for r in read_labelled(read_table(graded), graded, "rating")] == [3.5, 1.0]
    with pytest.raises(UserError, match=r"l.csv:2: label field 'nope' is missing \(columns: prompt, response"):
        read_labelled(read_table(p), p, "nope")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"prompt":"q","response":"a","harmful":1}\n{"prompt":"q","response":"a","harmful":"maybe"}\n')
    with pytest.raises(UserError, match=r"b.jsonl:2: field 'harmful' must be 0/1"):
        read_labelled(read_table(bad), bad, "harmful", "binary")
    pairs = tmp_path / "p.jsonl"
    pairs.write_text('{"prompt":"q","chosen":"a","rejected":"b"}\n')
    assert read_pairs(read_table(pairs), pairs)[0].worse == "b"


def test_builtin_suites_name_real_metrics():
    from cai_bench.harness.scorers import scorer_class

    for suite in suites.BUILTIN.values():
        for sid, names in suite.metrics.items():
            declared = {m.name for m in scorer_class(sid).metrics}
            assert set(names) <= declared, (suite.name, sid, names)


def test_download_once_into_the_cache(tmp_path, monkeypatch, sample_data, loopback):
    """Without --data, a suite's file comes from its URL once (the shared loopback
    server here), then from $CAI_BENCH_HOME/validity/."""
    import dataclasses

    loopback.files["/HarmfulVsEthical.jsonl"] = (sample_data / "evals" / "HarmfulVsEthical.jsonl").read_bytes()
    try:
        for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "CAI_BENCH_OFFLINE"):
            monkeypatch.delenv(flag, raising=False)
        monkeypatch.setenv("CAI_BENCH_HOME", str(tmp_path))
        url = f"{loopback.url}/HarmfulVsEthical.jsonl"
        suite = dataclasses.replace(get_suite("harmful-vs-ethical"), urls=(url,))
        assert len(suite.load()) == 24
        cached = tmp_path / "validity" / "harmful-vs-ethical" / "HarmfulVsEthical.jsonl"
        assert cached.read_bytes() == (sample_data / "evals" / "HarmfulVsEthical.jsonl").read_bytes()
    finally:
        loopback.close()
    assert len(suite.load()) == 24  # the server is gone: read from the cache
    broken = dataclasses.replace(get_suite("hhh-pairs"), urls=(url.replace("HarmfulVsEthical", "nope"),))
    with pytest.raises(UserError, match="could not download .*give a local copy with --data PATH"):
        broken.load()
