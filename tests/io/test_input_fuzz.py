"""Fuzz the input layer through the real loaders of every file kind the tool
reads: constitutions, task.yaml (with its prompts), prompt files for `tasks
new` (jsonl, csv) and `generate` (jsonl, json, txt), run configs, pipeline
configs, training recipes and `constitutions import` lists. Each input is a
valid seed file mutated (hostile snippets spliced in, bytes flipped, spans cut)
or with one field replaced by an arbitrary value. The only outcomes allowed are
success or the one-line UserError naming the file; any other exception, or an
error of several lines or none naming the file, fails.

Hypothesis runs derandomized with a fixed, small budget per kind, so the test is
the same on every run and fits the default suite (a few seconds in all);
`CAI_BENCH_FUZZ_EXAMPLES=N` raises the budget for a deeper search by hand."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cai_bench.errors import UserError  # noqa: E402

# per file kind: 8 kinds x 30, a few seconds; CAI_BENCH_FUZZ_EXAMPLES=2000 searches deeper (minutes)
EXAMPLES = int(os.environ.get("CAI_BENCH_FUZZ_EXAMPLES", "30"))

# Snippets the red team used, and their relatives: each spliced into a seed at a random place.
HOSTILE: list[bytes] = [
    b"\na0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n".encode() for i in range(1, 9)),
    b'"\\ud800"', b'"\\udfff x"', b"\\ud800", b'{"prompt": "\\ud83d"}',
    b"[" * 300, b"{" * 300, b"- " * 200, b"]]]}}}",
    b"\x00", b"\xff\xfe", b"\xe9", b"\xed\xa0\x80", b"\x1b[31m", b"\x07",
    b"&a [*a]", b"*nowhere", b"<<: *nowhere", b"<<: 5", b"!!python/object:os.system x",
    b"!!binary AAAA", b"? [a, b]\n: c\n", b"\t", b"1e999", b"-1", b"0", b"null", b"~", b"''",
    b"9" * 400, b"x" * 5000, b'"' * 3, b",,,", b"\r\n", b"\n\n\n", b"---\n---\n", b"%YAML 9.9\n",
    b'{"a": 1}', b"[1, 2]", b"id: xstest\n", b"id: south_africa\n", b"../../etc/passwd",
]

scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   st.text(max_size=20), st.sampled_from(["\ud800", "a\x00b", "x" * 20_000, "", " ", "../x"]))
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few edits: hostile snippets inserted, bytes replaced, spans removed."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "insert", "byte", "cut"]))
        if op == "insert":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        elif op == "byte" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        else:
            del data[at:at + draw(st.integers(1, 40))]
    return bytes(data)


@st.composite
def one_field(draw: st.DrawFn, seed: Any, dump: Callable[[Any], str]) -> bytes:
    """The seed's data with one (possibly nested) field replaced by an arbitrary value."""
    data = json.loads(json.dumps(seed))
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(value)
        break
    try:
        return dump(data).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError, yaml.YAMLError):
        return dump(seed).encode("utf-8")


def yaml_dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=False, sort_keys=False)


def jsonl_dump(rows: Any) -> str:
    rows = rows if isinstance(rows, list) else [rows]
    return "".join(json.dumps(r) + "\n" for r in rows)


def inputs(seed_text: str, seed_data: Any, dump: Callable[[Any], str]) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seed_text.encode()), one_field(seed_data, dump))


FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def check(path: Path, load: Callable[[], Any]) -> None:
    """Success, or a UserError of one line naming the file (its name, or its folder's)."""
    try:
        load()
    except UserError as exc:
        msg = exc.message
        assert "\n" not in msg and "\r" not in msg, msg
        assert path.name in msg or path.parent.name in msg, (path, msg)
        assert exc.exit_code == 2


# ---------------------------------------------------------------- seeds

CONSTITUTION = """\
id: fuzzland
name: Fuzzland
culture: FZ
base: &p {title: Respect, description: The response should be respectful.}
principles:
  - id: respect
    <<: *p
  - id: honesty
    title: Honesty
    description: The response should be honest.
    critique: Is the response honest?
    revision: Rewrite the response to be honest.
few_shot:
  - [{role: user, content: hi}, {role: assistant, content: hello}]
"""
CONSTITUTION_DATA = {k: v for k, v in yaml.safe_load(CONSTITUTION).items() if k != "base"}

TASK = "id: fuzz_task\nconstitution: fuzzland\ndescription: a task\nprompts: prompts.jsonl\n" \
       "generation: {max_new_tokens: 32}\n"
PROMPTS = [{"id": "1", "prompt": "Hello?", "reference": "Hi.", "principle_id": "respect"},
           {"id": "2", "prompt": "Why?", "category": "c"}]
PROMPTS_CSV = "id,prompt,reference\n1,Hello?,Hi.\n2,\"Why, then?\",Because.\n"
RUN = "checkpoints: [openai:m]\ntasks: [cai_south_africa]\nscorers: [similarity]\nlimit: 2\n" \
      "generation: {max_new_tokens: 16, temperature: 0.0}\n"
PIPELINE = "profile: cpu-small\ntask: cai_south_africa\nout: runs/za\nseed: 0\n" \
           "split: {eval_fraction: 0.33, seed: 0, max_train: 64, max_eval: 32}\n" \
           "eval: {limit: 4, scorers: [similarity], hhh: false}\n"
IMPORT_JSON = ["Please choose the assistant response that is as harmless as possible.",
               {"critic": "Identify harm.", "revision": "Remove the harm."}]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ---------------------------------------------------------------- one test per file kind


@FUZZ
@given(data=inputs(CONSTITUTION, CONSTITUTION_DATA, yaml_dump))
def test_fuzz_constitution(work: Path, data: bytes) -> None:
    from cai_bench.constitutions import parse_constitution, validate_files

    f = _write(work / "c" / "fuzzland.yaml", data)
    check(f, lambda: parse_constitution(f))
    assert all("\n" not in p for p in validate_files([f]))


@FUZZ
@given(task=inputs(TASK, yaml.safe_load(TASK), yaml_dump), prompts=inputs(jsonl_dump(PROMPTS), PROMPTS, jsonl_dump))
def test_fuzz_task_folder(work: Path, task: bytes, prompts: bytes, home_env: None) -> None:
    from cai_bench.tasks import parse_task

    folder = work / "tasks" / "fuzz_task"
    shutil.rmtree(folder, ignore_errors=True)
    _write(folder / "constitution.yaml", CONSTITUTION.encode())
    _write(folder / "prompts.jsonl", prompts)
    f = _write(folder / "task.yaml", task)
    check(f, lambda: parse_task(folder))


@FUZZ
@given(jsonl=inputs(jsonl_dump(PROMPTS), PROMPTS, jsonl_dump), csv=mutated(PROMPTS_CSV.encode()))
def test_fuzz_prompt_files_for_tasks_new(work: Path, jsonl: bytes, csv: bytes) -> None:
    from cai_bench.tasks import read_prompts_file

    for name, data in (("p.jsonl", jsonl), ("p.csv", csv)):
        f = _write(work / "prompts" / name, data)
        check(f, lambda f=f: read_prompts_file(f))


@FUZZ
@given(jsonl=inputs(jsonl_dump(PROMPTS), PROMPTS, jsonl_dump),
       js=inputs(json.dumps(PROMPTS, indent=1), PROMPTS, lambda d: json.dumps(d, indent=1)),
       txt=mutated(b"Hello?\nWhy, then?\n"))
def test_fuzz_prompt_files_for_generate(work: Path, jsonl: bytes, js: bytes, txt: bytes) -> None:
    from cai_bench.generation.prompts import load_prompts_file

    for name, data in (("g.jsonl", jsonl), ("g.json", js), ("g.txt", txt)):
        f = _write(work / "gen" / name, data)
        check(f, lambda f=f: load_prompts_file(f))


@FUZZ
@given(data=inputs(RUN, yaml.safe_load(RUN), yaml_dump))
def test_fuzz_run_config(work: Path, data: bytes, home_env: None) -> None:
    from cai_bench.harness.config import load_config_file

    f = _write(work / "run" / "run.yaml", data)
    check(f, lambda: load_config_file(f))


@FUZZ
@given(data=inputs(PIPELINE, yaml.safe_load(PIPELINE), yaml_dump))
def test_fuzz_pipeline_config(work: Path, data: bytes) -> None:
    from cai_bench.pipeline import build_config, load_config_file

    f = _write(work / "pipe" / "pipeline.yaml", data)

    def load() -> None:
        raw, lines = load_config_file(f)
        build_config(raw, source=str(f), lines=lines)

    check(f, load)


RECIPE_TEXT = (Path(__file__).resolve().parents[2] / "cai_bench" / "training" / "recipes"
               / "smollm2-135m-cpu-sft.yaml").read_text(encoding="utf-8")


@FUZZ
@given(data=inputs(RECIPE_TEXT, yaml.safe_load(RECIPE_TEXT), yaml_dump))
def test_fuzz_recipe(work: Path, data: bytes) -> None:
    from cai_bench.training.recipe import load_recipe

    f = _write(work / "recipe" / "recipe.yaml", data)
    check(f, lambda: load_recipe(f))


@FUZZ
@given(js=inputs(json.dumps(IMPORT_JSON, indent=1), IMPORT_JSON, lambda d: json.dumps(d, indent=1)),
       yml=inputs(yaml_dump(IMPORT_JSON), IMPORT_JSON, yaml_dump),
       txt=mutated(b"# principles\nPlease choose the response that is kind.\nBe honest.\n"))
def test_fuzz_constitution_import(work: Path, js: bytes, yml: bytes, txt: bytes) -> None:
    from cai_bench.constitutions.importer import build_constitution, dump_constitution

    for name, data in (("list.json", js), ("list.yaml", yml), ("list.txt", txt)):
        f = _write(work / "import" / name, data)

        def load(f: Path = f) -> None:
            dump_constitution(build_constitution(f, cid="imported", name="Imported"))

        check(f, load)


@pytest.fixture()
def home_env(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty CAI_BENCH_HOME and no CAI_BENCH_PATH: only the built-ins are searched."""
    monkeypatch.setenv("CAI_BENCH_HOME", str(work / "home"))
    monkeypatch.delenv("CAI_BENCH_PATH", raising=False)


def test_the_hostile_snippets_really_reach_the_loaders() -> None:
    """A guard on the fuzzer itself: the seeds load, and the snippets include the red team's cases."""
    assert yaml.safe_load(CONSTITUTION)["principles"][0]["title"] == "Respect"
    assert any(re.search(rb"\\ud[89a-f]", s) for s in HOSTILE)
    assert any(s.count(b"*a") >= 9 for s in HOSTILE)
