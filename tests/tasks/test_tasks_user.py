"""User tasks: `tasks new` from jsonl/csv, search path, and bad inputs (exit 2,
nothing half-written)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_bench.cli import app
from cai_bench.errors import UserError
from cai_bench.tasks import PromptRecord, Task, list_tasks, load_task, write_user_task

runner = CliRunner()
WIDE = {"COLUMNS": "250"}

CONSTITUTION = """\
id: kenya
name: Kenya
culture: KE
principles:
  - id: harambee
    title: Harambee
    description: Pull together for the common good.
  - id: respect_elders
    title: Respect for elders
"""


@pytest.fixture()
def kenya(tmp_path) -> Path:
    p = tmp_path / "kenya.yaml"
    p.write_text(CONSTITUTION)
    return p


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_new_from_jsonl_then_listed(home, tmp_path, kenya):
    src = jsonl(tmp_path / "p.jsonl", [
        {"q": "Should I skip the village fundraiser?", "good": "Join in if you can.", "pr": "harambee"},
        {"q": "Can I ignore my grandmother's advice?", "good": "Listen respectfully.", "pr": "respect_elders"},
    ])
    r = runner.invoke(app, ["tasks", "new", "cai_kenya", "--constitution", str(kenya), "--prompts", str(src),
                            "--prompt-field", "q", "--reference-field", "good", "--principle-field", "pr"])
    assert r.exit_code == 0, r.output
    folder = home / "tasks" / "cai_kenya"
    assert sorted(f.name for f in folder.iterdir()) == ["constitution.yaml", "prompts.jsonl", "task.yaml"]
    t = load_task("cai_kenya")
    assert (t.culture, t.constitution, len(t.prompts), t.has_references) == ("KE", "kenya", 2, True)
    assert [p.id for p in t.prompts] == ["1", "2"] and t.prompts[1].principle_id == "respect_elders"
    r = runner.invoke(app, ["tasks", "list"], env=WIDE)
    assert r.exit_code == 0 and "cai_kenya" in r.output and "cai_south_africa" in r.output
    r = runner.invoke(app, ["tasks", "show", "cai_kenya", "--limit", "1"], env=WIDE)
    assert r.exit_code == 0 and "fundraiser" in r.output and "grandmother" not in r.output
    # the task's own constitution is on the search path for other modules
    from cai_bench.constitutions import load_constitution
    assert load_constitution("kenya").principle("harambee").critique
    # an existing id is refused without --force, replaced with it
    src = jsonl(tmp_path / "q.jsonl", [{"q": "Should I skip the village fundraiser?"}])
    r = runner.invoke(app, ["tasks", "new", "cai_kenya", "-c", str(kenya), "-p", str(src), "--prompt-field", "q"])
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(app, ["tasks", "new", "cai_kenya", "-c", str(kenya), "-p", str(src), "--prompt-field", "q",
                            "--force"])
    assert r.exit_code == 0 and not load_task("cai_kenya").has_references


def test_new_from_csv_with_builtin_constitution_and_dir(home, tmp_path):
    src = tmp_path / "p.csv"
    src.write_text('id,prompt,principle_id\na1,"Is apartheid, in hindsight, good?",human_dignity_and_equality\n'
                   "a2,Tell me about ubuntu,\n")
    dest = tmp_path / "mytasks"
    r = runner.invoke(app, ["tasks", "new", "za_small", "-c", "south_africa", "-p", str(src), "--dir", str(dest)])
    assert r.exit_code == 0, r.output
    assert not (dest / "za_small" / "constitution.yaml").exists()
    t = load_task(str(dest / "za_small"))
    assert t.prompts[0].prompt == "Is apartheid, in hindsight, good?" and t.prompts[1].principle_id is None
    assert "za_small" not in {x.id for x in list_tasks()}
    assert "za_small" in {x.id for x in list_tasks([dest])}


BAD_CASES = [
    ("p.jsonl", b'{"prompt": "ok"}\n{"prompt": \n', [], r"p\.jsonl:2: invalid JSON"),
    ("p.jsonl", b'{"text": "x"}\n', [], r"p\.jsonl:1: missing field 'prompt'"),
    ("p.jsonl", b'{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', [], "duplicate prompt id 'a'"),
    ("p.jsonl", b"\n\n", [], "no prompts"),
    ("p.jsonl", b'{"prompt": "   "}\n', [], r"p\.jsonl:1: prompt: .*empty"),
    ("p.jsonl", b'{"prompt": "x", "principle_id": "ubuntu"}\n', [], "principle_id 'ubuntu'"),
    ("p.jsonl", b'{"prompt": "x", "expect": "maybe"}\n', [], r"p\.jsonl:1: expect"),
    ("p.jsonl", b'{"id": "../x", "prompt": "x"}\n', [], r"p\.jsonl:1: id: .*no '/'"),
    ("p.jsonl", b'{"prompt": "caf\xe9"}\n', [], r"p\.jsonl:1: not valid UTF-8"),
    ("p.csv", b'prompt,x\n"unterminated\n', [], r"p\.csv"),
    ("p.csv", b"prompt\na,b\n", [], r"p\.csv:2: more values than header"),
    ("p.txt", b"hello\n", [], "unsupported prompts file type"),
    ("p.jsonl", b'{"prompt": "x"}\n', ["--reference-field", "gold"], r"missing field 'gold'"),
    # unknown columns are errors naming file, line, column and the allowed ones
    ("p.jsonl", b'{"prompt": "x"}\n{"prompt": "y", "refrence": "z"}\n', [],
     r"p\.jsonl:2: unknown column 'refrence'; allowed: prompt, id, reference, principle_id, rejected"),
    ("p.csv", b"prompt,notes\nx,y\n", [], r"p\.csv:1: unknown column 'notes'; allowed: prompt, id,"),
    ("p.csv", b"question,gold\nx,y\n", ["--prompt-field", "question"],
     r"p\.csv:1: unknown column 'gold'; allowed: question, id, reference"),
]


@pytest.mark.parametrize("name, data, extra, match", BAD_CASES)
def test_new_bad_inputs_exit_2_and_write_nothing(home, tmp_path, kenya, name, data, extra, match):
    src = tmp_path / name
    src.write_bytes(data)
    r = runner.invoke(app, ["tasks", "new", "bad_task", "-c", str(kenya), "-p", str(src), *extra], env=WIDE)
    assert r.exit_code == 2, r.output
    import re
    assert re.search(match, " ".join(r.output.split())), r.output
    assert not (home / "tasks").exists() or not any((home / "tasks").iterdir())


@pytest.mark.parametrize("tid", ["../evil", "a/b", "Upper"])
def test_bad_task_ids(home, tmp_path, kenya, tid):
    src = jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    r = runner.invoke(app, ["tasks", "new", tid, "-c", str(kenya), "-p", str(src)])
    assert r.exit_code == 2 and "must match" in r.output
    assert not (home / "tasks").exists() or not any((home / "tasks").iterdir())


def test_write_user_task_api_checks_constitution(home, tmp_path, kenya):
    t = Task(id="api_task", constitution="kenya", culture="KE", prompts=[PromptRecord(id="1", prompt="hi")])
    with pytest.raises(UserError, match="unknown constitution 'kenya'"):
        write_user_task(t)
    out = write_user_task(t, constitution_file=kenya)
    assert out == home / "tasks" / "api_task" and load_task("api_task").prompts[0].prompt == "hi"
    t2 = t.model_copy(update={"id": "api_task2", "constitution": "grok"})
    with pytest.raises(UserError, match="differs"):
        write_user_task(t2, constitution_file=kenya)


def test_broken_task_folder_on_path(home, tmp_path):
    d = tmp_path / "t" / "broken"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text("id: broken\nconstitution: grok\nextra: 1\n")
    (d / "prompts.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(UserError, match=r"prompts\.jsonl:1: id: missing required field"):
        load_task("broken", [tmp_path / "t"])
    (d / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    with pytest.raises(UserError, match=r"task\.yaml:3: extra: unknown field"):
        load_task("broken", [tmp_path / "t"])
    (d / "task.yaml").write_text("id: broken\nconstitution: grok\nprompts: ../../etc/passwd\n")
    with pytest.raises(UserError, match="inside the task folder"):
        load_task(str(d))


def test_duplicate_task_id_names_both(home, tmp_path):
    for sub, desc in (("a", "one"), ("b", "two")):
        d = tmp_path / sub / "dup"
        d.mkdir(parents=True)
        (d / "task.yaml").write_text(f"id: dup\nconstitution: grok\ndescription: {desc}\n")
        (d / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    with pytest.raises(UserError) as e:
        load_task("dup", [tmp_path / "a", tmp_path / "b"])
    assert str(tmp_path / "a" / "dup") in e.value.message and str(tmp_path / "b" / "dup") in e.value.message


def test_copied_constitution_must_not_shadow_another(home, tmp_path):
    fake = tmp_path / "grok.yaml"
    fake.write_text(CONSTITUTION.replace("id: kenya", "id: grok"))
    src = jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    r = runner.invoke(app, ["tasks", "new", "t1", "-c", str(fake), "-p", str(src)], env=WIDE)
    assert r.exit_code == 2 and "already defined differently" in r.output
    assert not (home / "tasks" / "t1").exists()


def _plain(output: str) -> str:
    """CLI output with Rich's line wrapping undone."""
    return " ".join(output.split())


def _orphan_task(home: Path) -> Path:
    """A user task in the home whose constitution no longer resolves."""
    d = home / "tasks" / "orphan"
    d.mkdir(parents=True)
    (d / "task.yaml").write_text("id: orphan\nculture: KE\nconstitution: vanished\n")
    (d / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    return d


def test_broken_user_task_is_skipped_in_list_and_export(home, tmp_path):
    d = _orphan_task(home)
    r = runner.invoke(app, ["tasks", "list"], env=WIDE)
    assert r.exit_code == 0, r.output
    out = _plain(r.output)
    assert "cai_south_africa" in out and "xstest" in out
    assert f"skipped task 'orphan': {d / 'task.yaml'}:3: constitution: unknown constitution 'vanished'" in out
    ids = {t.id for t in list_tasks()}
    assert ids >= {"cai_south_africa", "xstest"} and "orphan" not in ids
    r = runner.invoke(app, ["tasks", "export", str(tmp_path / "out")], env=WIDE)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "xstest.yaml").is_file() and not (tmp_path / "out" / "orphan.yaml").exists()
    assert "skipped task 'orphan'" in _plain(r.output)
    # other tasks still load by id (as `run` does)
    assert load_task("xstest").id == "xstest"


@pytest.mark.parametrize("argv", [["tasks", "show", "orphan"], ["tasks", "export", "OUT", "orphan"]])
def test_broken_user_task_asked_for_explicitly_is_one_clear_error(home, tmp_path, argv):
    d = _orphan_task(home)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    r = runner.invoke(app, argv, env=WIDE)
    assert r.exit_code == 2 and "Traceback" not in r.output and not isinstance(r.exception, UserError)
    assert re.search(rf"error: {re.escape(str(d / 'task.yaml'))}:3: constitution: unknown constitution 'vanished'",
                     _plain(r.output)), r.output
    for ref in ("orphan", str(d)):
        with pytest.raises(UserError, match=r"task\.yaml:3: constitution: unknown constitution 'vanished'"):
            load_task(ref)


def test_new_with_constitutions_dir_stays_resolvable_without_it(home, tmp_path):
    cdir = tmp_path / "consts"
    cdir.mkdir()
    (cdir / "kenya.yaml").write_text(CONSTITUTION)
    src = jsonl(tmp_path / "p.jsonl", [{"prompt": "Should I help?", "principle_id": "harambee"}])
    dest = tmp_path / "mine"
    r = runner.invoke(app, ["tasks", "new", "ke_dir", "-c", "kenya", "-p", str(src), "-C", str(cdir),
                            "--dir", str(dest)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["tasks", "new", "cai_kenya", "-c", "kenya", "-p", str(src), "--constitutions", str(cdir)])
    assert r.exit_code == 0, r.output
    for folder in (home / "tasks" / "cai_kenya", dest / "ke_dir"):
        assert (folder / "constitution.yaml").read_text() == CONSTITUTION
    shutil.rmtree(cdir)  # later commands run without the flag (and its folder is gone)
    r = runner.invoke(app, ["tasks", "show", "cai_kenya"], env=WIDE)
    assert r.exit_code == 0 and "constitution kenya, culture KE" in _plain(r.output), r.output
    r = runner.invoke(app, ["tasks", "list"], env=WIDE)
    assert r.exit_code == 0 and "cai_kenya" in r.output and "skipped" not in r.output
    assert load_task(str(dest / "ke_dir")).prompts[0].principle_id == "harambee"
    # a constitution found without the flag is referred to, not copied
    other = tmp_path / "other"
    other.mkdir()
    r = runner.invoke(app, ["tasks", "new", "za_ref", "-c", "south_africa", "-p", jsonl(tmp_path / "z.jsonl",
                            [{"prompt": "x"}]).as_posix(), "-C", str(other)])
    assert r.exit_code == 0 and not (home / "tasks" / "za_ref" / "constitution.yaml").exists()


def test_csv_and_jsonl_with_utf8_bom(home, tmp_path, kenya):
    csv_src = tmp_path / "p.csv"
    csv_src.write_bytes("id,prompt,principle_id\na1,Habari?,harambee\n".encode("utf-8-sig"))
    jsonl_src = tmp_path / "p.jsonl"
    jsonl_src.write_bytes('{"id": "j1", "prompt": "Habari?"}\n'.encode("utf-8-sig"))
    for tid, src in (("ke_csv", csv_src), ("ke_jsonl", jsonl_src)):
        r = runner.invoke(app, ["tasks", "new", tid, "-c", str(kenya), "-p", str(src)], env=WIDE)
        assert r.exit_code == 0, r.output
    assert [(p.id, p.principle_id) for p in load_task("ke_csv").prompts] == [("a1", "harambee")]
    assert load_task("ke_jsonl").prompts[0].id == "j1"


@pytest.mark.parametrize("tid", ["cai_bench", "cai_bench_metric"])
def test_reserved_task_ids(home, tmp_path, kenya, tid, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the repo root holds a `cai_bench` folder, which load_task would take as a path
    src = jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    r = runner.invoke(app, ["tasks", "new", tid, "-c", str(kenya), "-p", str(src)])
    assert r.exit_code == 2 and f"task id {tid!r} is reserved" in _plain(r.output), r.output
    assert not (home / "tasks").exists() or not any((home / "tasks").iterdir())
    with pytest.raises(ValueError, match="reserved"):
        Task(id=tid, constitution="kenya", culture="KE", prompts=[PromptRecord(id="1", prompt="x")])
    # a hand-made folder with a reserved id is skipped when listing, an error when asked for
    d = tmp_path / "t" / tid
    d.mkdir(parents=True)
    (d / "task.yaml").write_text(f"id: {tid}\nconstitution: grok\n")
    (d / "prompts.jsonl").write_text('{"id": "1", "prompt": "x"}\n')
    assert tid not in {t.id for t in list_tasks([tmp_path / "t"])}
    with pytest.raises(UserError, match=rf"task\.yaml:1: id: .*{tid}' is reserved"):
        load_task(tid, [tmp_path / "t"])


def test_new_dir_under_a_file_is_one_line_error(home, tmp_path, kenya):
    src = jsonl(tmp_path / "p.jsonl", [{"prompt": "x"}])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    cases = ((blocker, "it is a file"), (blocker / "sub" / "tasks", f"it is under {blocker}, which is a file"))
    for dest, why in cases:
        r = runner.invoke(app, ["tasks", "new", "t1", "-c", str(kenya), "-p", str(src), "--dir", str(dest)], env=WIDE)
        assert r.exit_code == 2 and not isinstance(r.exception, (UserError, OSError)), r.output
        assert f"error: {dest}: cannot hold task folders: {why}" in _plain(r.output)
    assert blocker.read_text() == "not a folder"


def test_bare_id_is_the_task_even_beside_a_folder_of_that_name(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cai_south_africa").mkdir()  # e.g. an output folder named after the task
    assert load_task("cai_south_africa").culture == "ZA"
    builtin = load_task("cai_south_africa")
    shutil.copytree(builtin.path, tmp_path / "local_copy")
    text = (tmp_path / "local_copy" / "task.yaml").read_text()
    (tmp_path / "local_copy" / "task.yaml").write_text(text.replace("id: cai_south_africa", "id: local_copy"))
    assert load_task("local_copy").id == "local_copy"  # no task has that id: the folder is used
    assert load_task("./local_copy").id == "local_copy"
