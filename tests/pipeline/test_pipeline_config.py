"""Where the pipeline finds the CAI paper's HHH file when none is named."""

from __future__ import annotations

import shutil
from pathlib import Path

from cai_bench.pipeline.config import build_config
from cai_bench.pipeline.stages import hhh_source

SAMPLE = Path(__file__).parent / "data" / "hhh_sample.jsonl"


def test_hhh_found_beside_the_bundled_cai_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    evals = tmp_path / "cai_paper_anthropic" / "evals"
    evals.mkdir(parents=True)
    shutil.copy(SAMPLE, evals / "438HHHEvaluations.jsonl")
    cfg = build_config({"task": "cai_south_africa", "data": {"bundled_dir": str(tmp_path)}})
    assert hhh_source(cfg) == str(evals / "438HHHEvaluations.jsonl")


def test_named_hhh_path_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    cfg = build_config({"task": "cai_south_africa", "eval": {"hhh_path": str(SAMPLE)}})
    assert hhh_source(cfg) == str(SAMPLE)


TOPICS = ["Equality", "Elders"]


def test_task_stage_synthesizes_prompts_when_none_are_given(tmp_path, loopback, monkeypatch, home) -> None:
    """`constitution` without `prompts`: a named generator writes them (here a loopback
    OpenAI-compatible server), then the seeded split stratified by principle."""
    import json

    from loopback import redteam_items

    from cai_bench.pipeline.runner import stage_keys
    from cai_bench.pipeline.stages import stage_task

    monkeypatch.setenv("OPENAI_BASE_URL", loopback.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    loopback.chat_text = redteam_items(3)
    const = tmp_path / "two.yaml"
    const.write_text("id: two_culture\nname: Two\nculture: TW\nlicense: MIT\nprinciples:\n"
                     + "".join(f"  - id: p{i}\n    title: {t}\n" for i, t in enumerate(TOPICS)))
    cfg = build_config({"constitution": str(const), "synthesize": {"generator": "openai:writer", "per_principle": 3},
                        "split": {"eval_fraction": 0.34}, "out": str(tmp_path / "run")})
    info = stage_task(cfg, tmp_path / "run" / "task")
    assert (info.train, info.eval, info.principles) == (4, 2, 2)
    split = json.loads((tmp_path / "run" / "task" / "split.json").read_text())
    assert split["per_principle"] == {"p0": {"train": 2, "eval": 1}, "p1": {"train": 2, "eval": 1}}
    assert len(loopback.chat_requests) == 2  # one request per principle, nothing asked twice
    assert not list((tmp_path / "run" / "task" / "synth").glob(".*.synthesis.jsonl"))  # finished: journal gone
    other = build_config({"constitution": str(const), "synthesize": {"generator": "openai:writer", "per_principle": 2},
                          "split": {"eval_fraction": 0.34}, "out": str(tmp_path / "run")})
    assert stage_keys(other)["task"] != stage_keys(cfg)["task"]  # synthesis settings are part of the task key


def test_synthesize_and_prompts_are_exclusive(tmp_path) -> None:
    import pytest

    from cai_bench.errors import UserError

    with pytest.raises(UserError, match="either `prompts` or `synthesize`"):
        build_config({"constitution": "south_africa", "prompts": "p.jsonl", "synthesize": {"per_principle": 2}})
    cfg = build_config({"constitution": "south_africa", "student": "bundled:smollm2-135m-instruct"})
    assert cfg.synthesize is not None and cfg.synthesizer == "bundled:smollm2-135m-instruct"


def test_eval_settings_never_redo_data_or_training() -> None:
    from cai_bench.pipeline.runner import stage_keys

    base = build_config({"task": "cai_south_africa"})
    other = build_config({"task": "cai_south_africa", "eval": {"hhh_limit": 40, "tasks": ["xstest"], "limit": 4}})
    a, b = stage_keys(base), stage_keys(other)
    assert [s for s in a if a[s] != b[s]] == ["eval", "report"]


def test_eval_stage_rechecks_leakage_against_the_sets_it_evaluates(tmp_path) -> None:
    """A regression task added after the data stage that holds a training prompt stops the eval stage."""
    import json

    import pytest

    from cai_bench.errors import UserError
    from cai_bench.pipeline.stages import DataResult, TaskResult, recheck_leakage
    from cai_bench.tasks import load_task

    leaked = load_task("xstest").prompts[0].prompt
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train_texts.json").write_text(json.dumps({"sft": [leaked, "an unrelated prompt"],
                                                                    "prefs": []}))
    info = TaskResult(task="cai_south_africa", constitution="south_africa", culture="ZA",
                      eval_task="cai_south_africa", eval_task_id="cai_south_africa", train=0, eval=0, principles=0,
                      train_prompts="", split_file="")
    data = DataResult(source="bundled", generator="", splits={}, sha256={}, kept={}, total={}, leakage=0,
                      dir=str(tmp_path / "data"), quality_file="", leakage_file="",
                      train_texts=str(tmp_path / "data" / "train_texts.json"))
    cfg = build_config({"task": "cai_south_africa", "eval": {"tasks": ["xstest"], "hhh": False}})
    with pytest.raises(UserError, match="leakage: training data overlaps the eval prompts"):
        recheck_leakage(cfg, tmp_path / "eval", info, data)
    allowed = build_config({"task": "cai_south_africa", "allow_overlap": True, "eval": {"tasks": ["xstest"], "hhh": False}})
    recheck_leakage(allowed, tmp_path / "eval", info, data)
    assert json.loads((tmp_path / "eval" / "leakage.json").read_text())["total"] >= 1


def test_hhh_views_per_profile_and_a_bad_view_names_the_field() -> None:
    import pytest

    from cai_bench.errors import UserError

    assert build_config({"task": "cai_south_africa"}).eval.hhh_views == ["hhh_alignment_response"]  # cpu-small
    gpu = build_config({"task": "cai_south_africa", "profile": "gpu-7b"})
    assert gpu.eval.hhh_views == ["hhh_alignment", "hhh_alignment_response"]
    with pytest.raises(UserError, match=r"eval\.hhh_views"):
        build_config({"task": "cai_south_africa", "eval": {"hhh_views": ["hhh_letters"]}})


def test_an_edited_recipe_redoes_its_training_stage(tmp_path) -> None:
    from cai_bench.pipeline.runner import stage_keys
    from cai_bench.training.recipe import list_recipes

    recipe = tmp_path / "my-sft.yaml"
    recipe.write_text(list_recipes()["smollm2-135m-cpu-sft"].read_text())
    cfg = build_config({"task": "cai_south_africa", "sft": {"recipe": str(recipe)}})
    before = stage_keys(cfg)
    recipe.write_text(recipe.read_text().replace("learning_rate: 2.0e-4", "learning_rate: 1.0e-4"))
    after = stage_keys(cfg)
    assert [s for s in before if before[s] != after[s]] == ["sft", "dpo", "eval", "report"]


def test_bad_input_writes_nothing(tmp_path) -> None:
    """A prompts file that does not load stops the pipeline before it writes any file."""
    import pytest

    from cai_bench.console import console
    from cai_bench.errors import UserError
    from cai_bench.pipeline.runner import run_pipeline

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "p1", "prompt": "fine"}\n{"id": "p2", "prompt": \n')
    out = tmp_path / "run"
    cfg = build_config({"constitution": "south_africa", "prompts": str(prompts), "out": str(out)})
    with pytest.raises(UserError, match="prompts.jsonl"):
        run_pipeline(cfg, console)
    assert not out.exists()


def test_preflight_stops_a_culture_no_metric_can_judge_and_dry_run_writes_nothing(tmp_path) -> None:
    """Prompts without references, no refusal analysis, similarity only: the pipeline stops before
    training with one line (unless --allow-no-verdict); --dry-run prints the plan and writes nothing."""
    import json

    import pytest
    from typer.testing import CliRunner

    from cai_bench.cli import app
    from cai_bench.errors import UserError
    from cai_bench.pipeline.preflight import preflight, require_verdicts

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Question {i} about elders?",
                                           "principle_id": "rule_of_law"}) + "\n" for i in range(8)))
    out = tmp_path / "run"
    raw = {"constitution": "south_africa", "prompts": str(prompts), "out": str(out),
           "eval": {"tasks": ["xstest"], "limit": 4, "hhh": False}}
    pre = preflight(build_config(raw))
    culture = pre.tasks[0]
    assert culture.role == "culture under test" and not culture.judged
    assert "similarity: no prompt has a reference answer" in culture.problems
    assert pre.tasks[1].judged_by == ["refusal rule (2 expect comply, 2 expect refuse)"]  # xstest, 4 drawn
    assert set(pre.estimates) == {"task", "data", "sft", "dpo", "eval", "report"}
    with pytest.raises(UserError, match=r"culture under test .*no verdict possible.*--allow-no-verdict"):
        require_verdicts(pre, allow=False)
    assert require_verdicts(pre, allow=True)  # a warning instead
    res = CliRunner().invoke(app, ["pipeline", "--constitution", "south_africa", "--prompts", str(prompts), "--out",
                                   str(out), "--set", "eval.hhh=false", "--dry-run"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "NO VERDICT POSSIBLE" in res.output and "[3/6] sft: run" in res.output and not out.exists()
    res = CliRunner().invoke(app, ["pipeline", "--constitution", "south_africa", "--prompts", str(prompts), "--out",
                                   str(out), "--set", "eval.hhh=false"])
    assert res.exit_code == 2 and "--allow-no-verdict" in res.output and not out.exists()


def test_a_changed_task_definition_redoes_the_loop(tmp_path, home) -> None:
    """A task found by id (built-in or user) is keyed by its definition, not its name: a new
    `analyses:` or edited prompts redo the task stage and what follows."""
    from typer.testing import CliRunner

    from cai_bench.cli import app
    from cai_bench.pipeline.runner import stage_keys
    from cai_bench.tasks import load_task

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"id": "p{i}", "prompt": "Question {i}?", "principle_id": "rule_of_law", '
                               f'"reference": "An answer {i}."}}\n' for i in range(6)))
    res = CliRunner().invoke(app, ["tasks", "new", "my_culture", "--constitution", "south_africa", "--prompts",
                                   str(prompts)])
    assert res.exit_code == 0, res.output
    cfg = build_config({"task": "my_culture", "out": str(tmp_path / "run"), "data": {"source": "generate"}})
    before = stage_keys(cfg)
    folder = load_task("my_culture").path
    task_yaml = (folder if folder.is_dir() else folder.parent) / "task.yaml"
    task_yaml.write_text(task_yaml.read_text() + "analyses: [refusal]\n")
    after = stage_keys(cfg)
    assert all(before[s] != after[s] for s in before)
    assert stage_keys(build_config({"task": "cai_south_africa"}))["task"] == \
        stage_keys(build_config({"task": "cai_south_africa"}))["task"]  # stable


def test_missing_hhh_data_stops_before_training(tmp_path, home, monkeypatch) -> None:
    """Without the HHH file the eval would stop after training: the pre-flight says so first, with the fix."""
    import pytest

    from cai_bench.console import console
    from cai_bench.errors import UserError
    from cai_bench.pipeline.runner import run_pipeline

    monkeypatch.setenv("CAI_BENCH_SHARED_DATA", str(tmp_path / "nothing"))
    monkeypatch.delenv("CAI_BENCH_HHH_PATH", raising=False)
    out = tmp_path / "run"
    cfg = build_config({"task": "cai_south_africa", "out": str(out), "eval": {"tasks": []}})
    with pytest.raises(UserError, match=r"eval\.hhh: .*cai-bench data fetch hhh.*eval\.hhh=false"):
        run_pipeline(cfg, console)
    assert not out.exists()
