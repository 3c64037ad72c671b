"""Generation throughput on the same prompts: lm-eval's HF model (what `run`
uses by default) vs `run`'s vLLM engine (a vLLM server asked through the chat
layer) vs raw vLLM (its Python API in the vLLM environment), batch sizes
1/16/64 (1 on a few prompts only), greedy, `--tokens` new tokens.

Needs CAI_BENCH_VLLM_PYTHON (a python with vllm; docs/scale.md). Tokens are
counted with the model's tokenizer on the returned text.

    CAI_BENCH_VLLM_PYTHON=/opt/vllm-env/bin/python python benchmarks/bench_vllm.py [--prompts 64] [--tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RAW = r"""
import json, sys, time
from vllm import LLM, SamplingParams
def main():
    model, prompts_file, tokens, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    prompts = json.load(open(prompts_file))
    llm = LLM(model=model, dtype="auto", max_model_len=2048, enforce_eager=True, seed=0)
    sp = SamplingParams(temperature=0.0, max_tokens=tokens, ignore_eos=False)
    tok = llm.get_tokenizer()
    out = {}
    for b, n in batches:
        convs = [[{"role": "user", "content": p}] for p in prompts[:n]]
        t = time.perf_counter(); done = 0
        for i in range(0, n, b):
            res = llm.chat(convs[i:i + b], sp, use_tqdm=False)
            done += sum(len(r.outputs[0].token_ids) for r in res)
        out[b] = done / (time.perf_counter() - t)
    print("RESULT " + json.dumps(out), flush=True)
if __name__ == "__main__":
    main()
"""


def prompts(n: int) -> list[str]:
    from cai_bench.tasks import load_task

    return [p.prompt for p in load_task("cai_anthropic_harmless").prompts[:n]]


def count_tokens(tok, texts: list[str]) -> int:  # noqa: ANN001
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def hf(model_dir: str, ps: list[str], tokens: int, batches: list[tuple[int, int]]) -> dict[int, float]:
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from cai_bench.harness.generate import LmEvalGenerator, Sampling
    from cai_bench.tasks import PromptRecord, load_task

    base = load_task("cai_anthropic_harmless")
    task = base.model_copy(update={"prompts": [PromptRecord(id=f"p{i}", prompt=p) for i, p in enumerate(ps)]})
    tok = AutoTokenizer.from_pretrained(model_dir)
    out = {}
    for b, n in batches:
        gen = LmEvalGenerator(HFLM(pretrained=model_dir, device="cpu", batch_size=b, dtype="float32"), b)
        s = Sampling(max_new_tokens=tokens, temperature=0.0, top_p=1.0, chat_template=True, seed=0)
        t = time.perf_counter()
        answers = gen.generate(task, [f"p{i}" for i in range(n)], s)
        out[b] = count_tokens(tok, [a.text for a in answers]) / (time.perf_counter() - t)
        print(f"HF (lm-eval) batch {b}, {n} prompts: {out[b]:.1f} tokens/s", flush=True)
        gen.close()
    return out


def engine(model_dir: str, ps: list[str], tokens: int, batches: list[tuple[int, int]]) -> tuple[dict[int, float], float]:
    from transformers import AutoTokenizer

    from cai_bench.models import resolve_checkpoint
    from cai_bench.models.chat import ChatOptions, GenParams
    from cai_bench.models.chat.vllm_chat import VllmChat, local_options
    from cai_bench.models.vllm_server import VllmServer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ckpt = resolve_checkpoint(model_dir)
    t0 = time.perf_counter()
    server = VllmServer(model_dir).start()
    startup = time.perf_counter() - t0
    print(f"vLLM server ready in {startup:.0f} s", flush=True)
    out = {}
    try:
        for b, n in batches:  # what `run --engine vllm` does: the chat layer, batch_size requests in flight
            model = VllmChat.on_server(server, ckpt, local_options(ChatOptions(batch_size=b)))
            t = time.perf_counter()
            replies = model.chat([[{"role": "user", "content": p}] for p in ps[:n]], GenParams(tokens, 0.0, 1.0, 0))
            failed = [r.error for r in replies if not r.ok]
            if failed:
                raise SystemExit(f"run's vLLM engine: {len(failed)} of {n} requests failed at batch {b}: {failed[0]}")
            out[b] = count_tokens(tok, [r.text for r in replies]) / (time.perf_counter() - t)
            print(f"run's vLLM engine batch {b}, {n} prompts: {out[b]:.1f} tokens/s", flush=True)
            model.close()
    finally:
        server.stop()
    return out, startup


def raw(model_dir: str, ps: list[str], tokens: int, batches: list[tuple[int, int]]) -> dict[int, float]:
    from cai_bench.models.vllm_server import vllm_python

    with tempfile.TemporaryDirectory() as tmp:
        pf, script = Path(tmp) / "prompts.json", Path(tmp) / "raw_vllm.py"
        pf.write_text(json.dumps(ps))
        script.write_text(RAW)
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
        res = subprocess.run([vllm_python(None), str(script), model_dir, str(pf), str(tokens), json.dumps(batches)],
                             capture_output=True, text=True, env=env, timeout=3600)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"raw vLLM failed: {res.stderr[-2000:]}")
    return {int(k): v for k, v in json.loads(line[0][7:]).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--rounds", type=int, default=None,
                    help="batches of prompts per batch size (default: all --prompts); fewer on a slow machine")
    ap.add_argument("--b1-prompts", type=int, default=8, help="prompts at batch size 1")
    ap.add_argument("--only", default="hf,engine,raw", help="which of hf,engine,raw to measure")
    args = ap.parse_args()
    if not os.environ.get("CAI_BENCH_VLLM_PYTHON"):
        raise SystemExit("skipped: set CAI_BENCH_VLLM_PYTHON to a python with vllm (docs/scale.md)")
    from cai_bench.models import BUNDLED

    model_dir = str(BUNDLED["smollm2-135m-instruct"].prepare())
    ps = prompts(args.prompts)
    batches = [(b, min(len(ps), args.b1_prompts if b == 1 else b * args.rounds if args.rounds else max(b, len(ps))))
               for b in map(int, args.batches.split(","))]
    only = set(args.only.split(","))
    nan = {b: float("nan") for b, _ in batches}
    r_hf = hf(model_dir, ps, args.tokens, batches) if "hf" in only else nan
    r_engine, startup = engine(model_dir, ps, args.tokens, batches) if "engine" in only else (nan, float("nan"))
    r_raw = raw(model_dir, ps, args.tokens, batches) if "raw" in only else nan
    print(f"\nSmolLM2-135M-Instruct, HH-harmless prompts (batch:prompts {', '.join(f'{b}:{n}' for b, n in batches)}), "
          f"{args.tokens} new tokens greedy, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; tokens/s")
    print(f"{'batch':>5} {'HF (lm-eval)':>13} {'run vllm':>9} {'raw vLLM':>9} {'vllm/HF':>8} {'run/raw':>8}")
    for b, _ in batches:
        print(f"{b:5d} {r_hf[b]:13.1f} {r_engine[b]:9.1f} {r_raw[b]:9.1f} {r_engine[b] / r_hf[b]:8.2f} "
              f"{r_engine[b] / r_raw[b]:8.2f}")
    print(f"vLLM server start: {startup:.0f} s (once per checkpoint)")


if __name__ == "__main__":
    main()
