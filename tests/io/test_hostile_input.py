"""Hostile input files (the hardening issue): YAML alias bombs, lone UTF-16
surrogates, deep nesting, and `constitutions import` of files that are not
lists of principles. Each is one line naming the file and the reason, exit
code 2, no traceback, and is refused before it can eat memory or time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.io import MAX_ALIAS_NODES, load_yaml, parse_assignment, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

GOOD_CONSTITUTION = """\
id: {cid}
name: Test
culture: XX
principles:
  - id: respect
    title: Respect
    description: The response should be respectful.
"""


def bomb(levels: int = 9, width: int = 9) -> str:
    """"Billion laughs": `levels` anchors, each a list of `width` aliases to the previous one."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _cli(*args: str) -> tuple[int, list[str]]:
    res = runner.invoke(app, list(args), env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    return res.exit_code, [ln for ln in res.output.splitlines() if ln.strip()]


def _one_error(args: list[str], pattern: str) -> str:
    code, lines = _cli(*args)
    assert code == 2, lines
    assert len(lines) == 1, lines
    import re

    assert re.search(pattern, lines[0]), (pattern, lines[0])
    return lines[0]


# ---------------------------------------------------------------- 1. alias bombs


def test_alias_bomb_in_a_constitution_stops_at_once_in_a_real_process(tmp_path: Path) -> None:
    """The red team's file (nine levels of nine aliases: 9**9 leaves) in a real
    process capped at 1 GiB: before the fix it hung with memory growing."""
    f = tmp_path / "bomb.yaml"
    f.write_text(bomb() + "id: x\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CAI_BENCH_HOME": str(tmp_path / "home")}
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from cai_bench.cli import main; sys.argv = ['cai-bench', 'constitutions', 'validate', sys.argv[1]]; main()")
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - started < 30
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert res.returncode == 2, lines
    assert any(f"{f}: invalid YAML: aliases expand to" in ln for ln in lines), lines
    assert "Traceback" not in res.stderr


SMALL_BOMB = bomb(levels=7)  # 9**7 = 4.8 M nodes: past the bound, quick to fail either way


@pytest.mark.parametrize("kind", ["constitution", "run_config", "recipe", "pipeline", "search_folder", "set"])
def test_alias_bomb_in_every_yaml_the_tool_reads(kind: str, tmp_path: Path, home: Path) -> None:
    f = tmp_path / f"{kind}.yaml"
    f.write_text(SMALL_BOMB)
    pattern = rf"{kind}\.yaml: invalid YAML: aliases expand to [\d,]+ nodes"
    args = {"constitution": ["constitutions", "validate", str(f)],
            "run_config": ["run", str(f), "--out", str(tmp_path / "out"), "--no-report"],
            "recipe": ["train", "sft", str(f)],
            "pipeline": ["pipeline", str(f)],
            "search_folder": ["constitutions", "list"]}.get(kind)
    if kind == "search_folder":  # a file dropped into a folder every command searches
        (home / "constitutions").mkdir(parents=True)
        f = home / "constitutions" / "search_folder.yaml"
        f.write_text(SMALL_BOMB)
    if kind == "set":
        value = "{" + SMALL_BOMB.strip().replace("\n", ", ") + "}"
        with pytest.raises(UserError, match="aliases expand to"):
            parse_assignment(f"x={value}")
        return
    _one_error(args, pattern)
    assert not (tmp_path / "out").exists()


def test_anchors_and_merge_keys_keep_working(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("base: &b {title: T, description: d}\n"
                 "p1:\n  <<: *b\n  description: mine\n"
                 "list: &l [1, 2]\nagain: *l\n")
    data = load_yaml(f)
    assert data["p1"] == {"title": "T", "description": "mine"} and data["p1"].lines["description"] == 4
    assert data["again"] == [1, 2]
    f.write_text("a: 1\na: 2\n")  # a key written twice stays an error
    with pytest.raises(UserError, match=r"c\.yaml:2: invalid YAML: duplicate key 'a'"):
        load_yaml(f)
    # aliases up to the bound are fine: 9**5 = 59049 added nodes
    f.write_text(bomb(levels=5))
    assert len(load_yaml(f)["a4"]) == 9
    assert 9 ** 6 > MAX_ALIAS_NODES


@pytest.mark.parametrize("text, pattern", [
    ("a: &a [*a]\n", r"y\.yaml:1: invalid YAML: an alias refers to itself"),
    ("a: " + "[" * 150 + "]" * 150 + "\n", r"y\.yaml:1: invalid YAML: nested deeper than 100 levels"),
    ("a: ok\nb: \"\\ud800\"\n", r"y\.yaml:2: lone UTF-16 surrogate U\+D800"),
])
def test_yaml_recursion_depth_and_surrogates(tmp_path: Path, text: str, pattern: str) -> None:
    f = tmp_path / "y.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=pattern):
        load_yaml(f)


# ---------------------------------------------------------------- 2. lone surrogates in prompt files


def test_lone_surrogate_in_a_prompts_file_is_refused_at_input(tmp_path: Path, home: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "1", "prompt": "fine"}\n{"id": "2", "prompt": "bad \\ud800 here"}\n')
    _one_error(["tasks", "new", "mytask", "-c", "south_africa", "-p", str(prompts)],
               r"p\.jsonl:2: lone UTF-16 surrogate U\+D800")
    assert not (home / "tasks" / "mytask").exists()
    # a task folder whose prompts.jsonl was edited by hand: show and run name the line too
    folder = tmp_path / "tasks" / "handmade"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text("id: handmade\nconstitution: south_africa\nprompts: prompts.jsonl\n")
    (folder / "prompts.jsonl").write_text('{"id": "1", "prompt": "x \\udfff"}\n')
    _one_error(["tasks", "show", str(folder)], r"prompts\.jsonl:1: lone UTF-16 surrogate U\+DFFF")
    _one_error(["run", "-c", "openai:m", "-t", str(folder), "-s", "similarity", "-o", str(tmp_path / "out"),
                "--no-report"], r"prompts\.jsonl:1: lone UTF-16 surrogate U\+DFFF")
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_json_surrogate_pairs_and_depth(tmp_path: Path) -> None:
    f = tmp_path / "r.jsonl"
    f.write_text('{"t": "\\ud83d\\ude00"}\n{"t": ' + "[" * 120 + "]" * 120 + "}\n")
    with pytest.raises(UserError, match=r"r\.jsonl:2: nested deeper than 100 levels"):
        read_jsonl(f)
    f.write_text('{"t": "\\ud83d\\ude00"}\n')  # a real pair is one character (an emoji)
    assert read_jsonl(f) == [(1, {"t": "\U0001F600"})]


# ---------------------------------------------------------------- 4. constitutions import


def _import(src: Path, tmp_path: Path, pattern: str) -> None:
    _one_error(["constitutions", "import", str(src), "--id", "imported", "--name", "Imported",
                "--out", str(tmp_path / "out.yaml")], pattern)
    assert not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize("name, content, pattern", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, r"deep\.json: invalid JSON: nested deeper than 100 levels"),
    ("latin1.json", '["Respect the \xe9lders"]'.encode("latin-1"), r"latin1\.json:1: not valid UTF-8 \(byte 14\)"),
    ("latin1.txt", "Respect\nthe \xe9lders\n".encode("latin-1"), r"latin1\.txt:2: not valid UTF-8"),
    ("binary.json", bytes(range(256)) * 4, r"binary\.json:\d+: not valid UTF-8"),
    ("binary.txt", b"PK\x03\x04\x00\x00" * 50, r"binary\.txt:1: NUL byte; .*binary file"),
    ("ctrl.txt", "Be kind\x07\n", r"ctrl\.txt:1: text: control character U\+0007"),
    ("shape_list.json", json.dumps([{"critique": ["a"], "revision": "r"}]),
     r"shape_list\.json: item 1: critique: expected a text, got a list"),
    ("shape_title.json", json.dumps([{"title": {"x": 1}, "description": "d"}]),
     r"shape_title\.json: item 1: title: expected a text, got a mapping"),
    ("shape_chat.json", json.dumps({"constitutions": [{"critic": "c", "revision": "r"}], "system_chat": 5}),
     r"shape_chat\.json: system_chat: expected a list of chats, got int"),
    ("shape_paper.json", json.dumps({"harmful0": {"prompt": {"k": 1}, "edit_request": "e"}}),
     r"shape_paper\.json: entry 'harmful0': prompt: expected a text, got a mapping"),
    ("shape_top.json", "5", r"shape_top\.json: expected a list of principles .*got int"),
    ("empty.json", json.dumps(["", "", " "]), r"empty\.json: item 1: text: empty"),
    ("empty_pair.json", json.dumps([{"critic": " ", "revision": ""}]), r"empty_pair\.json: item 1: .*all empty"),
    ("surrogate.json", '["ok",\n "bad \\ud800"]', r"surrogate\.json:2: lone UTF-16 surrogate U\+D800"),
    ("bomb.yaml", SMALL_BOMB, r"bomb\.yaml: invalid YAML: aliases expand to"),
    ("long.json", json.dumps(["Please choose the response that is " + "very " * 4_000 + "good."]),
     r"long\.json: item 1: text: 20,040 characters; at most 10,000"),
])
def test_constitutions_import_refuses_what_is_not_a_list_of_principles(
        name: str, content: str | bytes, pattern: str, tmp_path: Path, home: Path) -> None:
    src = tmp_path / name
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        src.write_text(content, encoding="utf-8")
    _import(src, tmp_path, pattern)


def test_constitutions_import_size_bound_is_quick(tmp_path: Path, home: Path) -> None:
    """A 4 MB single principle took 92 s (rephrased, dumped, printed); now the size is refused first."""
    src = tmp_path / "huge.json"
    src.write_text(json.dumps(["Please choose the response that is " + "very " * 800_000 + "good."]))
    started = time.monotonic()
    _import(src, tmp_path, r"huge\.json: 4,000,044 bytes; a list of principles to import is at most 1,048,576 bytes")
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- 5. one namespace of ids


def test_new_tasks_and_imports_may_not_take_a_builtin_or_taken_id(tmp_path: Path, home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: both exited 0, and then every listing and run failed with "defined twice"."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "1", "prompt": "hello"}\n')
    for tid in ("xstest", "hhh_alignment", "cai_south_africa"):
        _one_error(["tasks", "new", tid, "-c", "south_africa", "-p", str(prompts)],
                   rf"error: task id '{tid}' is built in; choose another id")
    principles = tmp_path / "list.txt"
    principles.write_text("Be kind.\n")
    _one_error(["constitutions", "import", str(principles), "--id", "south_africa", "--name", "SA"],
               r"constitution id 'south_africa' is built in \(.*builtin/south_africa\.yaml\); choose another --id")
    assert not any(home.rglob("*.yaml"))
    # an id another folder on the search path already holds
    shared = tmp_path / "shared"
    monkeypatch.setenv("CAI_BENCH_PATH", str(shared))
    (shared / "mine").mkdir(parents=True)
    (shared / "mine" / "task.yaml").write_text("id: mine\nconstitution: grok\n")
    (shared / "mine" / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    (shared / "kenya.yaml").write_text(GOOD_CONSTITUTION.format(cid="kenya"))
    _one_error(["tasks", "new", "mine", "-c", "south_africa", "-p", str(prompts)],
               r"task id 'mine' is already defined \(.*shared/mine\); choose another id")
    _one_error(["constitutions", "import", str(principles), "--id", "kenya", "--name", "K"],
               r"constitution id 'kenya' is already defined \(.*shared/kenya\.yaml\); choose another --id")
    # the file being replaced (--force) is not a clash with itself
    code, _ = _cli("constitutions", "import", str(principles), "--id", "kenya", "--name", "K",
                   "--out", str(shared / "kenya.yaml"), "--force")
    assert code == 0


def test_a_clash_dropped_into_a_search_folder_is_one_warning_not_a_crash_of_every_command(
        tmp_path: Path, home: Path) -> None:
    (home / "constitutions").mkdir()
    dropped = home / "constitutions" / "sa.yaml"
    dropped.write_text(GOOD_CONSTITUTION.format(cid="south_africa"))
    folder = home / "tasks" / "xstest_copy"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text("id: xstest\nconstitution: grok\n")
    (folder / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    # constitutions first: `tasks list` loads constitutions too, and each clash is reported once per process
    for args, clash in ((["constitutions", "list"], f"builtin/south_africa.yaml and {dropped}"),
                        (["tasks", "list"], f"builtin/xstest and {folder}")):
        code, lines = _cli(*args)
        assert code == 0, lines  # before: exit 2, "defined twice", nothing listed
        assert len([ln for ln in lines if clash in ln]) == 1, lines  # one line naming both
        assert any("cai_romania" in ln or "romania" in ln for ln in lines)  # the others are listed
    code, lines = _cli("tasks", "show", "cai_romania")  # other ids work (before: "defined twice")
    assert code == 0, lines
    # the built-in id means the built-in: it is never shadowed (the warning is given once per process)
    code, lines = _cli("constitutions", "show", "south_africa")
    assert code == 0 and "22 principles" in " ".join(lines), lines
    code, lines = _cli("tasks", "show", "xstest")
    assert code == 0 and "450 prompts" in " ".join(lines), lines
    # two user files with one id: asking for it is the error naming both
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "k.yaml").write_text(GOOD_CONSTITUTION.format(cid="kenya"))
    (home / "constitutions" / "k.yaml").write_text(GOOD_CONSTITUTION.format(cid="kenya").replace("Test", "Other"))
    _one_error(["constitutions", "show", "kenya", "--constitutions", str(other)],
               rf"constitution id 'kenya' is defined twice, differently: {other / 'k.yaml'} and "
               rf"{home / 'constitutions' / 'k.yaml'}; rename one")


# ---------------------------------------------------------------- found by the fuzz test


@pytest.mark.parametrize("name, text, pattern", [
    ("p.csv", '"\\ud800"id,prompt\n1,Hello?\n', r"p\.csv:1: invalid CSV: ',' expected after '\"'"),
])
def test_fuzz_finds_prompt_files(tmp_path: Path, home: Path, name: str, text: str, pattern: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    _one_error(["tasks", "new", "fuzzed", "-c", "south_africa", "-p", str(f)], pattern)


@pytest.mark.parametrize("text, pattern", [
    ("checkpoints: [openai:m]\ntasks: [cai_south_africa]\nscorers: true\n", r"run\.yaml:3: scorers: Input should be a valid list"),
    ("checkpoints: ['~nobody_here/x']\ntasks: [cai_south_africa]\n", r"run\.yaml:1: checkpoints\.0: .*not a usable path"),
    ("checkpoints: [openai:m]\ntasks: ['" + "9" * 400 + "']\n", r"run\.yaml:2: tasks\.0: .*unknown task"),
])
def test_fuzz_finds_run_configs(tmp_path: Path, home: Path, text: str, pattern: str) -> None:
    f = tmp_path / "run.yaml"
    f.write_text(text)
    _one_error(["run", str(f), "--out", str(tmp_path / "out"), "--no-report"], pattern)


def test_fuzz_finds_pipeline_profile(tmp_path: Path, home: Path) -> None:
    f = tmp_path / "pipeline.yaml"
    f.write_text("profile: []\ntask: cai_south_africa\n")
    _one_error(["pipeline", str(f)], r"pipeline\.yaml:1: profile: unknown profile \[\]")
