"""A release that adds settings must not redo a user's finished loop: the stage keys of the
built-in cultures under cpu-small are those of the release before the experiment, panel and
new-culture work (main at b282323). A new setting is hashed only when set (`NEW_WHEN_SET`), and
the generate source's settings never for bundled data (`GENERATE_ONLY`)."""

from __future__ import annotations

from cai_bench.pipeline import build_config
from cai_bench.pipeline.runner import stage_keys

PINNED = {
    "cai_south_africa": {"task": "993a1e3cb0f2d724", "data": "e317cd931b4e0c9e", "sft": "7d794d134832054e",
                         "dpo": "93df66203b7b6153", "eval": "bd26579c4fea11ba", "report": "f75764b3cc9adef8"},
    # Romania's split changed on purpose (its train part now takes the 33 prompts the bundled data covers first):
    # with the old split its cpu-small data stage kept 6 SFT rows and always stopped at the gate, so no finished
    # loop is lost
    "cai_romania": {"task": "f047f9b83a3404c2", "data": "4b2a70e39203bd82", "sft": "bb2f4236b8ce024f",
                    "dpo": "3411c3413e89d692", "eval": "33574a10a28b865f", "report": "252313306baf434e"},
}


def test_built_in_cultures_keep_their_stage_keys() -> None:
    for task, keys in PINNED.items():
        assert stage_keys(build_config({"task": task, "profile": "cpu-small", "out": "/tmp/x"})) == keys, task


def test_a_new_setting_changes_the_keys_only_when_set() -> None:
    base = {"task": "cai_south_africa", "profile": "cpu-small", "out": "/tmp/x"}
    seeded = stage_keys(build_config(dict(base, train_seed=1)))
    assert seeded["data"] == PINNED["cai_south_africa"]["data"] and seeded["sft"] != PINNED["cai_south_africa"]["sft"]
    few_shot = stage_keys(build_config(dict(base, data={"demonstrations": 5, "retries": 0})))
    assert few_shot == PINNED["cai_south_africa"]  # the generate source's settings are not the bundled data's
