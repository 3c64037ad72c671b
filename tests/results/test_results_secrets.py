"""Secrets planted through every source a `cai-bench run` reads (environment, run
config, scorer config in the run config, `--scorer-set` flags) never reach the
store file, the report folder or the `-vv` log: the real CLI in a subprocess,
served checkpoints and the judge on the loopback server (tests/loopback.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cai_bench.redact import is_secret_key, redact_json, redact_obj

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"helpfulness": 5, "harmlessness": 8, "adherence": 6, "refused": False, "rationale": "ok"}
SECRETS = {name: f"PLANTED{name.upper()}9z" for name in
           ("envpw", "envkey", "cfgpw", "cfgkey", "judgepw", "judgekey", "judgeq", "flagpw", "flagkey")}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cai_bench", "-vv", *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_planted_secrets_reach_no_store_report_or_log(tmp_path, loopback, home):
    loopback.chat_text = lambda body: json.dumps(GOOD) if body.get("model") == "judge-x" else "A plain answer."
    hostport = loopback.openai_url.split("://", 1)[1]
    s = SECRETS
    config = tmp_path / "run.yaml"
    config.write_text(
        "checkpoints: ['openai:gpt-cfg']\ntasks: [cai_south_africa]\nlimit: 2\n"
        f"openai: {{base_url: 'http://cfguser:{s['cfgpw']}@{hostport}', api_key: '{s['cfgkey']}'}}\n"
        "scorers:\n"
        f"  - {{id: judge, backend: openai, model: judge-x, api_key: '{s['judgekey']}',\n"
        f"     base_url: 'http://ju:{s['judgepw']}@{hostport}?api-key={s['judgeq']}'}}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": s["envkey"],
           "OPENAI_BASE_URL": f"http://envuser:{s['envpw']}@{hostport}"}
    out = tmp_path / "out"
    runs = [
        _cli(["run", str(config), "-o", str(out)], env),  # run config + scorer config
        _cli(["run", "-c", "openai:gpt-env", "-t", "cai_south_africa", "-n", "2", "-s", "judge",  # env + flags
              "--scorer-set", "judge.backend=openai", "--scorer-set", "judge.model=judge-x",
              "--scorer-set", f"judge.base_url=http://fu:{s['flagpw']}@{hostport}",
              "--scorer-set", f"judge.api_key={s['flagkey']}", "-o", str(out)], env),
        _cli(["report", "-o", str(out)], env),
        _cli(["report", "-o", str(out), "--list-configs"], env),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    # every source's URL reached the server (httpx sends userinfo as basic auth, over the key)
    import base64

    auth = " ".join(base64.b64decode(h.split()[-1]).decode() for h in
                    {r.headers.get("authorization", "") for r in loopback.requests} if h.startswith("Basic "))
    assert all(s[k] in auth for k in ("cfgpw", "envpw", "judgepw", "flagpw")), auth
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{out / 'results.sqlite'}").connect() as c:
        assert c.execute(sa.text("select count(*) from generations")).scalar() == 4
        assert c.execute(sa.text("select count(*) from scores where status = 'ok'")).scalar() == 8
        stored = " ".join(c.execute(sa.text("select config_json from runs")).scalars())
        stored += " ".join(c.execute(sa.text("select config_json from scorer_metrics")).scalars())
    assert f"http://***@{hostport}" in stored and "api-key=***" in stored  # redacted, not dropped
    files = [f for f in out.rglob("*") if f.is_file()]
    assert any(f.name == "results.sqlite" for f in files) and any(f.suffix == ".html" for f in files)
    logs = "".join(r.stdout + r.stderr for r in runs)
    for name, secret in SECRETS.items():
        assert secret not in logs, name
        for f in files:
            assert secret.encode() not in f.read_bytes(), (name, f)


def test_redaction_of_settings_masks_secret_keys_and_urls():
    obj = {"base_url": "http://u:pw@h:1/v1?key=q", "api_key": "k", "headers": {"Authorization": "Bearer abc"},
           "X-Api-Key": "x", "hf_token": "t", "db_password": "p", "pad_token": "<pad>", "max_new_tokens": 8,
           "none_key": None, "api-key": None, "urls": ["postgresql://a:b@db/cai"]}
    assert redact_obj(obj) == {"base_url": "http://***@h:1/v1?key=***", "api_key": "***",
                               "headers": {"Authorization": "***"}, "X-Api-Key": "***", "hf_token": "***",
                               "db_password": "***", "pad_token": "<pad>", "max_new_tokens": 8, "none_key": None,
                               "api-key": None, "urls": ["postgresql://***@db/cai"]}
    assert not is_secret_key("eos_token") and is_secret_key("Proxy-Authorization")
    clean = '{"b": 1, "a": "http://h/v1"}'
    assert redact_json(clean) is clean  # nothing secret: the text as written
    assert json.loads(redact_json('{"token": "x"}')) == {"token": "***"}


def test_store_redacts_recipe_settings_in_a_loop_record_and_error_rows(tmp_path):
    """The pipeline's loop record carries the recipes' settings; a generation error may
    quote the endpoint: the store masks both, whoever called it."""
    from cai_bench.results import Store, Unit
    from cai_bench.results.loops import LoopRecord, load_loops

    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    store = Store(url)
    run = store.start_run(json.dumps({"openai": {"api_key": "PLANTEDRUNKEY9z"}}), 0, "test", heartbeat=False)
    store.upsert_gen_config("g", {"max_new_tokens": 4, "base_url": "http://u:PLANTEDGENPW9z@h/v1"})
    store.put_loop(LoopRecord("loop", "Ελλάδα loop", {}, {}, "t", ["t"], config={
        "generate": {"model": "openai:m", "base_url": "https://x:PLANTEDRECIPEPW9z@h/v1",
                     "headers": {"Authorization": "Bearer PLANTEDBEARER9z"}},
        "sft": {"hub_token": "PLANTEDHUB9z", "pad_token": "<pad>"}}))
    store.record_generation_errors(run, Unit("fp", "t", "g", ("a",)),
                                   [("a", "HTTP 401 from http://u:PLANTEDERRPW9z@h/v1 (api_key=PLANTEDERRKEY9z)")])
    store.close()
    (record,) = load_loops(url)
    assert record.title == "Ελλάδα loop" and record.config["sft"] == {"hub_token": "***", "pad_token": "<pad>"}
    assert record.config["generate"]["base_url"] == "https://***@h/v1"
    blob = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    assert b"PLANTED" not in blob
