"""Run config: YAML, flag overrides, globs, scorer entries, gen hash, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_bench.errors import UserError
from cai_bench.harness.config import (
    RunConfig,
    apply_overrides,
    default_config,
    expand_checkpoints,
    gen_hash,
    load_config_file,
)


def test_yaml_with_scorer_settings_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text(
        "checkpoints: bundled:smollm2-135m-instruct\n"
        "tasks: [cai_south_africa]\n"
        "scorers: [similarity, {id: judge, backend: hf, model: x, api_key: SECRET}]\n"
        "limit: 3\n"
        "generation: {max_new_tokens: 12, chat_template: false}\n"
    )
    cfg = load_config_file(f)
    assert cfg.checkpoints == ["bundled:smollm2-135m-instruct"]
    assert [s.id for s in cfg.scorers] == ["similarity", "judge"]
    assert cfg.scorers[1].settings == {"backend": "hf", "model": "x", "api_key": "SECRET"}
    assert "SECRET" not in cfg.public_json()
    cfg2 = apply_overrides(cfg, tasks=["cai_romania"], limit=5, max_new_tokens=20, checkpoints=[], force=True)
    assert cfg2.tasks == ["cai_romania"] and cfg2.limit == 5 and cfg2.force
    assert cfg2.generation.max_new_tokens == 20 and cfg2.generation.chat_template is False
    assert cfg2.checkpoints == cfg.checkpoints  # an empty flag list leaves the file's value


def test_bad_config_names_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("checkpoints: [a]\nlimit: -1\nbogus: 1\n")
    with pytest.raises(UserError) as e:
        load_config_file(f)
    assert str(f) in e.value.message and "limit" in e.value.message and "bogus" in e.value.message
    f.write_text("checkpoints: [a\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config_file(f)


def test_checkpoint_globs(tmp_path: Path) -> None:
    for name in ("checkpoint-2", "checkpoint-10"):
        (tmp_path / "sft" / name).mkdir(parents=True)
    got = expand_checkpoints([str(tmp_path / "sft" / "checkpoint-*"), "bundled:x", "bundled:x"])
    assert got == [str(tmp_path / "sft" / "checkpoint-10"), str(tmp_path / "sft" / "checkpoint-2"), "bundled:x"]
    with pytest.raises(UserError, match="matches no directory"):
        expand_checkpoints([str(tmp_path / "nothing-*")])


def test_gen_hash_changes_with_every_setting() -> None:
    base = dict(max_new_tokens=16, temperature=0.0, top_p=1.0, chat_template=True, seed=0)
    h = gen_hash(**base)
    assert gen_hash(**base) == h
    for key, value in [("max_new_tokens", 17), ("temperature", 0.5), ("top_p", 0.9), ("chat_template", False),
                       ("seed", 1)]:
        assert gen_hash(**{**base, key: value}) != h, key


def test_default_config_is_small_and_offline() -> None:
    cfg = default_config()
    assert cfg.checkpoints == ["bundled:smollm2-135m-instruct"]
    assert {"cai_south_africa", "cai_romania"} <= set(cfg.tasks)
    assert [s.id for s in cfg.scorers] == ["all"] and cfg.limit and cfg.limit <= 8
    assert isinstance(RunConfig().out, Path)


def test_store_password_never_stored_or_printed() -> None:
    from cai_bench.results import redact_url

    url = "postgresql+psycopg://bench:s3cret-pw@db.example:5432/cai"
    assert "s3cret-pw" not in redact_url(url) and "db.example:5432/cai" in redact_url(url)
    assert redact_url("sqlite:////tmp/x/results.sqlite") == "sqlite:////tmp/x/results.sqlite"
    assert "s3cret-pw" not in RunConfig(store=url).public_json()


def test_vllm_python_flag_reaches_the_generation_settings() -> None:
    """`run --vllm-python` sets what `generation.vllm.python` in a run config sets (as `generate` has it)."""
    from cai_bench.harness.config import RunConfig, apply_overrides

    cfg = apply_overrides(RunConfig(tasks=["xstest"]), engine="vllm", vllm_python="/opt/vllm/bin/python")
    assert cfg.generation.engine == "vllm" and cfg.generation.vllm.python == "/opt/vllm/bin/python"
    from typer.testing import CliRunner

    from cai_bench.cli import app

    assert "--vllm-python" in CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"}).output
