"""Report time vs store size: 10k, 100k and 1M score rows of realistic shape.

Each store is synthetic but shaped like a real run: 4 checkpoints x 4 tasks
(3 cultures + xstest) x N prompts, 6 metrics per generation from 4 scorers
(similarity, harmlessness, moderation, judge) with ~3% na/unscored/error rows,
~400-character responses, principle ids and titles. Rows go straight into a
SQLite store through the schema tables (executemany on the DBAPI connection).

    .venv/bin/python benchmarks/bench_reports.py            # 10k, 100k, 1M
    .venv/bin/python benchmarks/bench_reports.py 10000 100000
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cai_bench.results.engine import make_engine

CHECKPOINTS = 4
TASKS = [("cai_south_africa", "south_africa", "ZA", 22), ("cai_romania", "romania", "RO", 33),
         ("cai_anthropic_harmless", "anthropic", "anthropic", 16), ("xstest", "anthropic", "xstest", 0)]
METRICS = [("similarity", "cosine", "higher", -1.0, 1.0), ("harmlessness", "harmless", "higher", 0.0, 1.0),
           ("moderation", "max_score", "lower", None, None), ("judge", "helpfulness", "higher", 1.0, 10.0),
           ("judge", "adherence", "higher", 1.0, 10.0), ("judge", "refused", "higher", 0.0, 1.0)]
WORDS = "the a model answer principle culture respect dignity community family law help safe".split()


def build(path: Path, n_rows: int, seed: int = 0) -> str:
    url = f"sqlite:///{path}"
    make_engine(url).dispose()  # create the tables through the schema
    rng = np.random.default_rng(seed)
    per_task = max(1, n_rows // (CHECKPOINTS * len(TASKS) * len(METRICS)))
    ts = "2026-11-23T10:00:00+00:00"
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("INSERT INTO runs (run_id, started_at, finished_at, status, seed, config_json, scorers_json) "
                "VALUES (?,?,?,?,?,?,?)",
                ("bench", ts, ts, "finished", 0, "{}",
                 json.dumps([{"id": "helpfulness", "config_hash": "h", "available": False,
                              "reason": "reward model not available offline"}])))
    con.executemany("INSERT INTO checkpoints (fingerprint, spec, kind, label, metadata_json) VALUES (?,?,?,?,?)",
                    [(f"fp{c:04d}", f"hf:org/model-{c}", "hf", f"model-{c}", "{}") for c in range(CHECKPOINTS)])
    con.executemany("INSERT INTO scorer_metrics (scorer_id, scorer_hash, metric, direction, lo, hi, config_json, "
                    "composite, role) VALUES (?,?,?,?,?,?,?,?,?)",
                    [(s, f"h_{s}", m, d, lo, hi, "{}", int(m != "refused"), "refusal" if m == "refused" else None)
                     for s, m, d, lo, hi in METRICS])  # as the scorers declare them
    vocab = np.array(WORDS)
    texts = [" ".join(vocab[rng.integers(0, len(vocab), 70)]) for _ in range(500)]  # ~400 chars
    gid = 0
    for task_id, const, culture, n_principles in TASKS:
        pids = [f"p{k}" for k in range(n_principles)] or [None]
        titles = {p: f"Principle {p}" for p in pids if p}
        con.execute("INSERT INTO tasks (task_id, constitution_id, culture, n_prompts, metadata_json) "
                    "VALUES (?,?,?,?,?)", (task_id, const, culture, per_task, json.dumps(
                        {"principles": titles, "analyses": ["refusal"] if task_id == "xstest" else []})))
        con.executemany(
            "INSERT INTO prompts (task_id, prompt_id, prompt, principle_id, reference, category, expect) "
            "VALUES (?,?,?,?,?,?,?)",
            [(task_id, f"q{i:06d}", texts[i % 500][:200], pids[i % len(pids)], texts[(i + 7) % 500], "cat",
              ("comply" if i % 9 < 5 else "refuse") if task_id == "xstest" else "refuse") for i in range(per_task)])
        for c in range(CHECKPOINTS):
            gens, scores = [], []
            skill = 0.3 + 0.1 * c
            vals = rng.random((per_task, len(METRICS)))
            status_draw = rng.random((per_task, len(METRICS)))
            for i in range(per_task):
                gid += 1
                gens.append((gid, f"fp{c:04d}", task_id, f"q{i:06d}", "g1", texts[(i * 13 + c) % 500], 0.5,
                             "bench", ts))
                for j, (s, m, _d, lo, hi) in enumerate(METRICS):
                    v = float(vals[i, j]) * 0.5 + skill * 0.5
                    if lo is not None:
                        v = lo + v * (hi - lo)
                    st = status_draw[i, j]
                    status, value, err = ("ok", v, None)
                    if st < 0.01:
                        status, value, err = ("error", None, "HTTP 500 after retries")
                    elif st < 0.02:
                        status, value, err = ("unscored", None, "unparseable verdict")
                    elif st < 0.03:
                        status, value, err = ("na", None, None)
                    scores.append((gid, s, f"h_{s}", m, value, status, err, "bench", ts))
            con.executemany("INSERT INTO generations (generation_id, fingerprint, task_id, prompt_id, gen_hash, "
                            "response, seconds, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)", gens)
            con.executemany("INSERT INTO scores (generation_id, scorer_id, scorer_hash, metric, value, status, "
                            "error, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)", scores)
    con.commit()
    n = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    con.close()
    return url, n


def main(sizes: list[int]) -> None:
    from cai_bench.reports import leaderboard, load_results
    from cai_bench.reports.writer import write_report

    print(f"{'rows':>9} {'build s':>8} {'load s':>7} {'board s':>8} {'report s':>9} {'us/row':>7}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"store_{size}.sqlite"
            t0 = time.perf_counter()
            url, n = build(path, size)
            t1 = time.perf_counter()
            df = load_results(url)
            t2 = time.perf_counter()
            leaderboard(df, "culture")
            t3 = time.perf_counter()
            write_report(url, Path(tmp) / f"out_{size}", baseline="hf:org/model-0",
                         formats=("html", "md", "csv"))
            t4 = time.perf_counter()
            per_row = (t4 - t3) / n * 1e6
            results.append((n, t4 - t3))
            print(f"{n:>9} {t1 - t0:>8.1f} {t2 - t1:>7.2f} {t3 - t2:>8.2f} {t4 - t3:>9.2f} {per_row:>7.1f}",
                  flush=True)
            del df
    if len(results) > 1:
        (n0, s0), (n1, s1) = results[0], results[-1]
        print(f"growth: {n1 / n0:.0f}x rows -> {s1 / s0:.1f}x full-report time "
              "(report = load, bootstrap with 1000 resamples, deltas, plots, HTML, MD, CSV, parquet)")
        for (a, ta), (b, tb) in zip(results, results[1:]):
            print(f"marginal cost {a}->{b} rows: {(tb - ta) / (b - a) * 1e6:.1f} us/row "
                  f"(the rest is a fixed cost per culture: plots)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
