#!/usr/bin/env python
"""Cut the small samples of ../shared/data that the test suite reads into tests/data/.

    .venv/bin/python scripts/build_test_data.py [--data ../shared/data]

The tests need a few real rows of each public data set, not the sets themselves, and
must pass in a clone with no ../shared beside it. This writes tests/data/ with the same
layout as ../shared/data (so a test reads `<data>/xstest/xstest_prompts.csv` either way),
a few rows per file, and the upstream LICENSE files that ask to travel with copies.
Deterministic: re-running on the same inputs gives the same bytes. Attribution and
licenses: tests/data/README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests" / "data"

# tests/pipeline/test_pipeline_e2e.py splits cai_south_africa with these settings; the
# bundled CAI rows of exactly its train prompts are kept (the pipeline uses no others).
PIPELINE_SPLIT = {"fraction": 0.33, "seed": 3, "max_train": 12, "max_eval": 4}


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def red_team(data: Path, sub: str) -> None:
    """The first 2 prompts of the first 3 principles (keys are 0-based principle positions)."""
    raw = _load(data / "bluedot_cai" / sub / "red_team_prompts.json")
    _json(OUT / "bluedot_cai" / sub / "red_team_prompts.json", {k: raw[k][:2] for k in ("0", "1", "2")})


def pipeline_rows(data: Path) -> None:
    """SA critique/revision and preference rows ("i_j" keys) of the pipeline test's train prompts."""
    from cai_bench.constitutions import load_constitution
    from cai_bench.pipeline.stages import stratified_split
    from cai_bench.tasks import load_task

    task = load_task("cai_south_africa")
    positions = {p.id: i for i, p in enumerate(load_constitution("south_africa").principles)}
    train, _ = stratified_split(task.prompts, **PIPELINE_SPLIT)
    keys = []
    for p in train:
        principle, _, n = p.id.rpartition("-")
        keys.append(f"{positions[principle]}_{int(n) - 1}")
    for name in ("sft_dataset.json", "pref_dataset.json"):
        raw = _load(data / "bluedot_cai" / "sa" / name)
        _json(OUT / "bluedot_cai" / "sa" / name, {k: raw[k] for k in raw if k in set(keys)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    data = ap.parse_args().data

    # bluedot_cai (MIT): the whole SA principle list (5 KB), the first 6 Romanian principles.
    _copy(data / "bluedot_cai/constitutions/revised_sac.json", OUT / "bluedot_cai/constitutions/revised_sac.json")
    _json(OUT / "bluedot_cai/constitutions/ro_principles.json",
          _load(data / "bluedot_cai/constitutions/ro_principles.json")[:6])
    red_team(data, "sa")
    red_team(data, "ro")
    pipeline_rows(data)

    # llm-swarm (MIT): 4 critique/revision pairs and the first few-shot chat.
    swarm = _load(data / "llm_swarm_constitutions/constitution_anthropic.json")
    _json(OUT / "llm_swarm_constitutions/constitution_anthropic.json",
          {"constitutions": swarm["constitutions"][:4], "system_chat": swarm["system_chat"][:1]})
    _copy(data / "llm_swarm_constitutions/LICENSE", OUT / "llm_swarm_constitutions/LICENSE")

    # hh-rlhf harmless-base first turns (MIT): the first 20 rows, as they are.
    src = data / "hh_rlhf_harmless_base_test/harmless_base_test_first_turn_prompts.jsonl"
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)[:20]
    dest = OUT / "hh_rlhf_harmless_base_test/harmless_base_test_first_turn_prompts.jsonl"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(lines), encoding="utf-8")
    _copy(data / "hh_rlhf_harmless_base_test/LICENSE", OUT / "hh_rlhf_harmless_base_test/LICENSE")

    # XSTest v2 (CC-BY-4.0, attributed in the README): the first 2 prompts of each of the 18 types.
    with open(data / "xstest/xstest_prompts.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    per_type: dict[str, list[dict]] = {}
    for r in rows:
        per_type.setdefault(r["type"], []).append(r)
    keep = sorted((r for group in per_type.values() for r in group[:2]), key=lambda r: int(r["id"]))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(keep)
    (OUT / "xstest").mkdir(parents=True, exist_ok=True)
    (OUT / "xstest/xstest_prompts.csv").write_text(buf.getvalue(), encoding="utf-8")

    # CAI paper supplementary material (no license stated upstream): a few rows, attributed.
    paper = data / "cai_paper_anthropic/prompts"
    _json(OUT / "cai_paper_anthropic/prompts/RLMadisonInstructions.json", _load(paper / "RLMadisonInstructions.json")[:6])
    crit = _load(paper / "CritiqueRevisionInstructions.json")
    _json(OUT / "cai_paper_anthropic/prompts/CritiqueRevisionInstructions.json", {k: crit[k] for k in list(crit)[:4]})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
