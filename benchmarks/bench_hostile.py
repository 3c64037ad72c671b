"""The hostile-input campaign, re-run: every hostile case the hardening issue
lists, replayed through the real CLI (`python -m cai_bench`, one subprocess per
command, killed at a wall-clock cap) on real files and real loopback servers.

One row per command: its exit code, how many stderr lines it wrote, whether a
failure was a single line, whether any 'Traceback' appeared, whether it hit the
cap (a hang), its seconds, and where it applies whether nothing was lost
(store bytes unchanged, committed rows kept, the re-run completes, no secret
written). A row passes when the exit code is the expected one and the command
was quick, quiet and lost nothing; a row that hangs is reported as such (the
remote deadlines may live on another branch): it is the true result.

Usage: python benchmarks/bench_hostile.py [--only CASE ...] [--cap 120] [--markdown]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]  # loopback, reliability_faults

TASK = "cai_south_africa"
HANG_CAP = 60.0  # a remote hang: a command with a total deadline (timeout 5 s x 2 attempts) ends far sooner
SECRETS = ("S3cretUserinfoPw", "J5ecretJudgePw")
MARKER = "[cai-bench: answer "
PROGRESS = re.compile(r": \d+/\d+ \(\d+%\), [\d:]+ elapsed")
LOG_PREFIX = re.compile(r"^\[[\d/ :]+\]\s+")  # a Rich log line's time stamp


def bomb(levels: int = 9, width: int = 9) -> str:
    """"Billion laughs": `levels` anchors, each a list of `width` aliases to the one before (9**9 leaves)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- one command


@dataclass
class Outcome:
    """What one CLI process did."""

    code: int | None  # None: killed at the cap
    stdout: str
    stderr: str
    seconds: float

    @property
    def hang(self) -> bool:
        return self.code is None

    @property
    def lines(self) -> list[str]:
        """Every non-blank line written, progress lines ("generate m x t: 16/20 (80%)") left out."""
        return [x for x in (self.stdout + "\n" + self.stderr).splitlines() if x.strip() and not PROGRESS.search(x)]


def cli(args: list[str], env: dict[str, str], cwd: Path, cap: float, *, fsize: int | None = None,
        prefix: tuple[str, ...] = ()) -> Outcome:
    """Run `cai-bench ARGS` as a real process in its own session (so the cap kills it and any
    child); `fsize` sets RLIMIT_FSIZE in the child (a full disk), `prefix` e.g. drops to `nobody`."""
    def pre() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    t0 = time.perf_counter()
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "cai_bench", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True, preexec_fn=pre)
    try:
        out, err = proc.communicate(timeout=cap)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return Outcome(code, out, err, time.perf_counter() - t0)


@dataclass
class Row:
    """One line of the campaign's table."""

    case: str
    command: str
    expect: tuple[int, ...]
    out: Outcome
    kept: str = "-"  # yes / no / - (does not apply)

    @property
    def one_line(self) -> str:
        if self.out.code in (None, 0):
            return "-"
        return "yes" if len(self.out.lines) == 1 else f"no ({len(self.out.lines)})"

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.out.stdout or "Traceback" in self.out.stderr

    @property
    def stderr_lines(self) -> int:
        return len([x for x in self.out.stderr.splitlines() if x.strip()])

    @property
    def ok(self) -> bool:
        return (self.out.code in self.expect and not self.traceback and self.one_line in ("-", "yes")
                and self.kept != "no")

    def says(self, work: Path) -> str:
        """The error line (or the last line of a success), paths shortened."""
        lines = [LOG_PREFIX.sub("", x).strip() for x in self.out.lines]
        errs = [x for x in lines if x.startswith(("error", "Error", "warning", "WARNING", "│ Invalid", "Invalid"))]
        plain = [x for x in lines if x[0] not in "┏┃┡│└╭╰━─"]
        text = (errs or plain or [""])[0 if errs else -1].strip(" │")
        for prefix in (str(work) + "/", str(work), str(ROOT) + "/"):
            text = text.replace(prefix, "")
        return text if len(text) <= 110 else text[:107] + "..."


def short(args: list[str], work: Path) -> str:
    """The command as typed, with the campaign's temp paths cut to their last part."""
    shown = []
    for a in args:
        if str(work) in a:
            a = Path(a.split("=", 1)[-1]).name if "://" not in a else a.replace(str(work) + "/", "")
        shown.append(a if len(a) <= 40 else a[:37] + "...")
    return "cai-bench " + " ".join(shown)


# ---------------------------------------------------------------- the campaign's world


class Campaign:
    """A temp folder, the child environment, and the rows measured so far."""

    def __init__(self, work: Path, cap: float) -> None:
        self.work = work
        self.cap = cap
        self.rows: list[Row] = []
        self._n = 0

    def folder(self, name: str) -> Path:
        self._n += 1
        f = self.work / f"{self._n:02d}_{name}"
        f.mkdir(parents=True)
        f.chmod(0o777)  # `nobody` reads and writes there too
        (f / "home").mkdir()
        (f / "home").chmod(0o777)
        return f

    def env(self, where: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CAI_BENCH_"))}
        env.update({"PYTHONPATH": str(ROOT), "CAI_BENCH_HOME": str(where / "home"), "HOME": str(where / "home"),
                    "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "OMP_NUM_THREADS": "1",
                    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", **extra})
        return env

    def run(self, case: str, args: list[str], where: Path, expect: tuple[int, ...], *, kept: Callable[[], bool]
            | None = None, cap: float | None = None, env: dict[str, str] | None = None, **kw: object) -> Row:
        out = cli(args, env or self.env(where), where, cap or self.cap, **kw)  # type: ignore[arg-type]
        row = Row(case, short(args, self.work), expect, out, "-" if kept is None else ("yes" if kept() else "no"))
        self.rows.append(row)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{len(self.rows):02d}.txt").write_text(f"$ {row.command}\nexit {out.code}\n--- stdout\n{out.stdout}"
                                                        f"\n--- stderr\n{out.stderr}", encoding="utf-8")
        return row


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a folder: its hash and mtime (a read must change neither, nor add a -wal)."""
    return {f.name: (sha(f), f.stat().st_mtime_ns) for f in sorted(folder.iterdir())}


def count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0] or 0)
    finally:
        con.close()


def responses(db: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("select generation_id, prompt_id, response from generations order by 1").fetchall()
    finally:
        con.close()


def run_config(path: Path, base_url: str, *, scorer: str, timeout: float = 10, attempts: int = 2) -> Path:
    """A run config sending `openai:` checkpoints to `base_url`, with one scorer config."""
    path.write_text(f"openai: {{base_url: '{base_url}', api_key: sk-loopback, timeout: {timeout}, "
                    f"max_attempts: {attempts}}}\nscorers:\n  - {scorer}\n", encoding="utf-8")
    return path


def moderation(url: str) -> str:
    return (f"{{id: moderation, base_url: '{url}/v1', api_key: sk-loopback, max_attempts: 2, timeout: 10, "
            "initial_wait: 0.05}")


def judge(base_url: str, timeout: float = 10) -> str:
    return (f"{{id: judge, backend: openai, base_url: '{base_url}', api_key: sk-loopback, model: judge, "
            f"concurrency: 1, max_attempts: 2, timeout: {timeout}, initial_wait: 0.05}}")


@contextmanager
def loopback(chat_text: Callable[[dict], str] | None = None) -> Iterator[object]:
    """The test suite's loopback server (real OpenAI wire format), answering judge verdicts too."""
    from loopback import Loopback
    from reliability_faults import bench_text

    with Loopback(chat_text=chat_text or bench_text) as srv:
        yield srv


@contextmanager
def raw_server(serve: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A bare TCP server on 127.0.0.1 whose every connection is handled by `serve` in a thread
    (for replies no HTTP library would send: a trickle, or silence); yields its URL."""
    stop = threading.Event()
    ls = socket.create_server(("127.0.0.1", 0))
    ls.settimeout(0.2)

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn, stop), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{ls.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        ls.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(x.split(b":")[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Headers at once, then the body one byte a second (each read is quick: no read timeout fires)."""
    from loopback import chat_completion

    try:
        _read_request(conn)
        body = json.dumps(chat_completion("A slow answer.", "m")).encode().ljust(2000)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode())
        for i in range(len(body)):
            if stop.wait(1.0):
                break
            conn.sendall(body[i:i + 1])
    except OSError:
        pass
    finally:
        conn.close()


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request, never answer."""
    try:
        _read_request(conn)
        stop.wait()
    except OSError:
        pass
    finally:
        conn.close()


# ---------------------------------------------------------------- the cases


def case_alias_bomb(c: Campaign) -> None:
    """1. Nine levels of nine aliases in every kind of YAML the tool reads."""
    w = c.folder("bomb")
    f = w / "bomb.yaml"
    f.write_text(bomb())
    out = w / "out"
    nothing = lambda: not out.exists()  # noqa: E731
    c.run("1 alias bomb: constitution", ["constitutions", "validate", str(f)], w, (2,))
    c.run("1 alias bomb: run config", ["run", str(f), "--out", str(out), "--no-report"], w, (2,), kept=nothing)
    c.run("1 alias bomb: recipe", ["train", "sft", str(f)], w, (2,), kept=nothing)
    value = "{" + bomb().strip().replace("\n", ", ") + "}"
    c.run("1 alias bomb: --set value", ["train", "sft", "smollm2-135m-cpu-sft", "--set", f"x={value}"], w, (2,))
    c.run("1 alias bomb: pipeline config", ["pipeline", str(f), "--dry-run"], w, (2,))
    folder = w / "home" / "tasks" / "x"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(bomb())
    c.run("1 alias bomb: search folder", ["tasks", "list"], w, (0, 2))


def case_surrogate_prompts(c: Campaign) -> None:
    """2. A lone surrogate (a JSON escape) in a prompts file and in a task folder's prompts."""
    w = c.folder("surrogate")
    p = w / "p.jsonl"
    p.write_text('{"id": "1", "prompt": "fine"}\n{"id": "2", "prompt": "bad \\ud800 here"}\n')
    c.run("2 lone surrogate: tasks new", ["tasks", "new", "surro", "-c", "south_africa", "-p", str(p)], w, (2,),
          kept=lambda: not (w / "home" / "tasks" / "surro").exists())
    folder = w / "handmade"
    folder.mkdir()
    (folder / "task.yaml").write_text("id: handmade\nconstitution: south_africa\nprompts: prompts.jsonl\n")
    shutil.copy(p, folder / "prompts.jsonl")
    out = w / "out"
    env = c.env(w, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="sk-x")
    c.run("2 lone surrogate: run", ["run", "-c", "openai:m", "-t", str(folder), "-s", "moderation", "-o", str(out),
                                    "--no-report"], w, (2,), env=env, kept=lambda: not (out / "results.sqlite").exists())


IMPORTS: dict[str, str | bytes] = {
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "latin1.json": '["Respect the \xe9lders"]'.encode("latin-1"),
    "binary.bin": bytes(range(256)) * 16,
    "shape.json": json.dumps({"constitutions": [{"critic": "c", "revision": "r"}], "system_chat": 5}),
    "huge.json": json.dumps(["Please choose the response that is " + "very " * 800_000 + "good."]),
    "empty.json": json.dumps(["", "", " "]),
}


def case_import(c: Campaign) -> None:
    """3. `constitutions import` of files that are not lists of principles (the 4 MB one timed)."""
    w = c.folder("import")
    for name, content in IMPORTS.items():
        src = w / name
        src.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        dest = w / f"{src.stem}.out.yaml"
        c.run(f"3 import: {name}", ["constitutions", "import", str(src), "--id", "imported", "--name", "Imported",
                                   "--out", str(dest)], w, (2,), kept=lambda d=dest: not d.exists())


def case_namespace(c: Campaign) -> None:
    """4. Taking a built-in id is refused, and the listings still work afterwards."""
    w = c.folder("namespace")
    p = w / "p.jsonl"
    p.write_text('{"id": "1", "prompt": "hello"}\n')
    principles = w / "list.txt"
    principles.write_text("Be kind.\n")
    nothing = lambda: not any((w / "home").rglob("*.yaml"))  # noqa: E731
    c.run("4 namespace: task id xstest", ["tasks", "new", "xstest", "-c", "south_africa", "-p", str(p)], w, (2,),
          kept=nothing)
    c.run("4 namespace: constitution id", ["constitutions", "import", str(principles), "--id", "south_africa",
                                           "--name", "SA"], w, (2,), kept=nothing)
    for what, builtin in (("constitutions", "south_africa"), ("tasks", "xstest")):
        row = c.run(f"4 namespace: then {what} list", [what, "list"], w, (0,))
        row.kept = "yes" if builtin in row.out.stdout else "no"


def seed_store(c: Campaign, w: Path, n: int = 4) -> Path:
    """A real store: `run` of an `openai:` checkpoint and the moderation scorer against the loopback."""
    with loopback() as srv:
        cfg = run_config(w / "seed.yaml", srv.openai_url, scorer=moderation(srv.url))
        out = w / "seed"
        r = cli(["run", str(cfg), "-c", "openai:m", "-t", TASK, "-n", str(n), "-s", "moderation", "-o", str(out),
                 "--no-report"], c.env(w), w, c.cap)
        if r.code != 0:
            raise RuntimeError(f"seed store: {r.stderr[-2000:]}")
    return out / "results.sqlite"


def case_store(c: Campaign) -> None:
    """5. A broken, empty, unreachable or read-only store: one line, or read-only work; no byte changed."""
    w = c.folder("store")
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    pg = f"postgresql://cai:pw@127.0.0.1:{port}/x"
    row = c.run("5 store: unreachable PostgreSQL", ["status", "--store", pg], w, (2,))
    row.kept = "yes" if ":pw@" not in row.out.stdout + row.out.stderr else "no"
    corrupt = w / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database, " * 4096)
    before = sha(corrupt)
    for cmd in (["status"], ["report", "--out", str(w / "o1"), "--no-show"]):
        c.run(f"5 store: corrupt SQLite ({cmd[0]})", [*cmd, "--store", str(corrupt)], w, (2,),
              kept=lambda: sha(corrupt) == before)
    empty = w / "empty.sqlite"
    empty.touch()
    for cmd in (["status"], ["report", "--out", str(w / "o2"), "--no-show"]):
        c.run(f"5 store: 0-byte file ({cmd[0]})", [*cmd, "--store", str(empty)], w, (2,),
              kept=lambda: empty.stat().st_size == 0)
    db = seed_store(c, w)
    before_db = sha(db)
    c.run("5 store: report --n-boot 0", ["report", "--store", str(db), "--out", str(w / "o3"), "--n-boot", "0"], w,
          (2,), kept=lambda: sha(db) == before_db)
    folder = db.parent
    shutil.rmtree(folder / "report", ignore_errors=True)  # none with --no-report; the read-only rows start clean
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        snap = snapshot(folder)
        scratch = c.folder("store_ro_out")
        c.run("5 store: read-only (root)", ["report", "--store", str(db), "--out", str(scratch / "r"), "--no-show"],
              scratch, (0,), kept=lambda: snapshot(folder) == snap)
        c.run("5 store: read-only (root)", ["status", "--store", str(db)], scratch, (0,),
              kept=lambda: snapshot(folder) == snap)
        if os.geteuid() == 0 and shutil.which("setpriv"):
            c.run("5 store: read-only (nobody)", ["report", "--store", str(db), "--out", str(scratch / "n"),
                                                  "--no-show"], scratch, (0,), kept=lambda: snapshot(folder) == snap,
                  prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)


LONG = "A long answer that fills the store quickly. " * 600  # 26 KB, under the 64 KiB answer cap


def case_full_disk(c: Campaign) -> None:
    """6. A full disk (RLIMIT_FSIZE) under `run` and `report`: one line; committed rows kept; re-run completes."""
    w = c.folder("full_disk")
    with loopback(lambda body: LONG) as srv:
        cfg = run_config(w / "run.yaml", srv.openai_url, scorer=moderation(srv.url))
        out = w / "out"
        db = out / "results.sqlite"
        args = ["run", str(cfg), "-c", "openai:m", "-t", TASK, "-n", "20", "--chunk-size", "2", "-s", "moderation",
                "-o", str(out), "--no-report"]
        kept: list[tuple[str, str, str]] = []

        def committed() -> bool:
            kept.extend(responses(db) if db.exists() else [])
            return 0 < len(kept) < 20

        c.run("6 full disk: run (500 kB)", args, w, (2,), fsize=500_000, kept=committed)
        c.run("6 full disk: same run again", args, w, (0,),
              kept=lambda: (rows := responses(db))[:len(kept)] == kept and len(rows) == 20)
        before = sha(db)
        rep = w / "rep"
        c.run("6 full disk: report (40 kB)", ["report", "--store", str(db), "--out", str(rep), "--no-show"], w, (2,),
              fsize=40_000, kept=lambda: sha(db) == before and not list(rep.rglob("*.tmp")))


def case_secrets(c: Campaign) -> None:
    """7. Passwords in a run config's `openai.base_url` and a judge's `base_url`: in no stored byte."""
    w = c.folder("secrets")
    with loopback() as srv:
        host = srv.url.removeprefix("http://")
        cfg = run_config(w / "run.yaml", f"http://cai:{SECRETS[0]}@{host}/v1",
                         scorer=judge(f"http://judge:{SECRETS[1]}@{host}/v1"))
        out = w / "out"
        row = c.run("7 secret in base_url userinfo", ["run", str(cfg), "-c", "openai:m", "-t", TASK, "-n", "2",
                                                      "-s", "judge", "-o", str(out)], w, (0,))
        blobs = [f.read_bytes() for f in out.rglob("*") if f.is_file()]
        blobs.append((row.out.stdout + row.out.stderr).encode())
        found = [s for s in SECRETS if any(s.encode() in b for b in blobs)]
        row.kept = "no" if found or not (out / "results.sqlite").exists() else "yes"


def case_hostile_answers(c: Campaign) -> None:
    """8. A model answer with lone surrogates, and a 50 MB answer: stored, flagged; the re-run does nothing."""
    for name, text in (("lone surrogate", "half \ud800 of a pair and \udfff end"),
                       ("50 MB", "é" + "x" * 50_000_000)):
        w = c.folder("answer")
        with loopback(lambda body, t=text: t) as srv:
            cfg = run_config(w / "run.yaml", srv.openai_url, scorer=moderation(srv.url), timeout=60)
            out = w / "out"
            db = out / "results.sqlite"
            args = ["run", str(cfg), "-c", "openai:hostile", "-t", TASK, "-n", "2", "--max-new-tokens", "256",
                    "-s", "moderation", "-o", str(out)]

            def flagged() -> bool:
                rows = responses(db)
                small = db.stat().st_size < 2_000_000 and sum(
                    f.stat().st_size for f in out.rglob("*.html")) < 2_000_000
                return len(rows) == 2 and all(MARKER in r[2].rsplit("\n", 1)[-1] for r in rows) and small

            c.run(f"8 model answer: {name}", args, w, (0,), kept=flagged)
            asked = len(srv.chat_requests)
            c.run(f"8 model answer: {name}, again", args, w, (0,),
                  kept=lambda: len(srv.chat_requests) == asked and len(responses(db)) == 2)


def case_remote_hangs(c: Campaign) -> None:
    """9. A server that trickles its reply one byte a second (`timeout: 5`), and a judge that never answers."""
    cap = min(c.cap, HANG_CAP)
    w = c.folder("trickle")
    with loopback() as srv, raw_server(trickle) as slow:
        cfg = run_config(w / "run.yaml", f"{slow}/v1", scorer=moderation(srv.url), timeout=5)
        c.run("9 hang: headers, then 1 byte/s", ["run", str(cfg), "-c", "openai:m", "-t", TASK, "-n", "1",
                                                  "-s", "moderation", "-o", str(w / "out"), "--no-report"],
              w, (0, 2), cap=cap)
    w = c.folder("silent_judge")
    with loopback() as srv, raw_server(silent) as mute:
        cfg = run_config(w / "run.yaml", srv.openai_url, scorer=judge(f"{mute}/v1", timeout=5), timeout=5)
        db = w / "out" / "results.sqlite"
        c.run("9 hang: judge never answers", ["run", str(cfg), "-c", "openai:m", "-t", TASK, "-n", "1",
                                               "-s", "judge", "-o", str(w / "out"), "--no-report"],
              w, (0, 2), cap=cap, kept=lambda: db.exists() and count(
                  db, "select count(*) from scores where scorer_id = 'judge' and status = 'error'") == 4)


CASES: dict[str, Callable[[Campaign], None]] = {
    "alias_bomb": case_alias_bomb, "surrogate": case_surrogate_prompts, "import": case_import,
    "namespace": case_namespace, "store": case_store, "full_disk": case_full_disk, "secrets": case_secrets,
    "answers": case_hostile_answers, "hangs": case_remote_hangs,
}


def campaign(names: list[str], work: Path, cap: float = 120.0) -> list[Row]:
    """Run the named cases in `work`; every command's row, in order."""
    c = Campaign(work, cap)
    for name in names:
        CASES[name](c)
    return c.rows


# ---------------------------------------------------------------- the table

HEAD = ["case", "command", "exit", "stderr lines", "one-line error", "traceback", "hang", "s", "nothing lost",
        "pass", "says"]


def cells(r: Row, work: Path) -> list[str]:
    return [r.case, r.command, "-" if r.out.code is None else str(r.out.code), str(r.stderr_lines), r.one_line,
            "yes" if r.traceback else "no", "yes" if r.out.hang else "no", f"{r.out.seconds:.1f}", r.kept,
            "yes" if r.ok else "NO", r.says(work)]


def markdown(rows: list[Row], work: Path) -> str:
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")

    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        cs = cells(r, work)
        cs[1] = f"`{esc(cs[1])}`"
        cs[-1] = esc(cs[-1])
        lines.append("| " + " | ".join(cs) + " |")
    return "\n".join(lines)


def plain(rows: list[Row], work: Path) -> str:
    table = [HEAD[:-1]] + [cells(r, work)[:-1] for r in rows]
    widths = [min(60, max(len(x[i]) for x in table)) for i in range(len(HEAD) - 1)]
    return "\n".join("  ".join(x[i][:widths[i]].ljust(widths[i]) for i in range(len(widths))) for x in table)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(CASES), default=list(CASES))
    ap.add_argument("--cap", type=float, default=120.0, help="wall-clock cap per command, seconds")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cai-hostile-"))
    work.chmod(0o755)
    t0 = time.perf_counter()
    try:
        rows = campaign(a.only, work, a.cap)
    finally:
        if a.keep:
            print(f"kept: {work} (each command's output in logs/)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(plain(rows, work))
    if a.markdown:
        print()
        print(markdown(rows, work))
    bad = [r for r in rows if not r.ok]
    print(f"\n{len(rows)} commands, {len(rows) - len(bad)} pass, {len(bad)} not; {time.perf_counter() - t0:.0f} s")
    for r in bad:
        print(f"  NOT PASSED: {r.case}: exit {r.out.code}, says: {r.says(work)}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
