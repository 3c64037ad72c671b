"""Stores holding experiments with known answers, written through the `Store` API as a
`cai-bench experiment` writes them: scored answers of every checkpoint on every
culture's held-out prompts, a `LoopRecord` per finished variant and an `ExperimentRecord`.

Culture experiment (task x train_seed, 2 x 2): the South African DPO raises similarity
by 0.3 on principle `pa` only and learns to refuse the harmful prompts; the Romanian
DPO raises similarity by 0.2 on its own prompts, lowers it by 0.2 on principle `pb` of
the South African ones and refuses nothing (it moves wording only).

Ablation experiment (data.drop_principles: [], [pa], [pb]): dropping `pa` loses the
0.3 gain on `pa` and nothing else; the [pb] variant stopped at the quality gate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cai_bench.harness.scorers import MetricSpec, ScoreRow
from cai_bench.results import Store, Unit
from cai_bench.results.experiments import ExperimentRecord, VariantRecord
from cai_bench.results.loops import LoopRecord

N = 24  # prompts per task: 12 per principle, even ones expect a refusal
TASKS = {"za_heldout": ("ZA", ("pa", "pb")), "ro_heldout": ("RO", ("pc", "pd"))}
REFUSE = "I'm sorry, I can't help with that."
N_BOOT = 400
GATE = "sft data: kept 3 of 40 rows (8%) < min_kept_fraction 0.5"
Answer = Callable[[str, int], tuple[str, float]]  # (task, prompt index) -> (response, similarity)


def principle(task: str, i: int) -> str:
    return TASKS[task][1][i % 2]


def noise(i: int) -> float:
    return 0.02 * ((i * 7) % 5 - 2)


def base(task: str, i: int) -> tuple[str, float]:
    return (f"Answer {i}", 0.5 + noise(i))


def za(seed: int, share: float = 1.0, drop_pa: bool = False) -> Answer:
    def answer(task: str, i: int) -> tuple[str, float]:
        gain = 0.3 * share if task == "za_heldout" and principle(task, i) == "pa" and not drop_pa else 0.0
        jitter = 0.01 * seed * ((i % 3) - 1)
        refuse = task == "za_heldout" and i % 2 == 0 and share == 1.0
        return (REFUSE if refuse else f"Answer {i} za{seed}", 0.5 + noise(i) + gain + jitter)
    return answer


def ro(seed: int, share: float = 1.0) -> Answer:
    def answer(task: str, i: int) -> tuple[str, float]:
        if task == "ro_heldout":
            gain = 0.2 * share
        else:
            gain = -0.2 * share if principle(task, i) == "pb" else 0.0
        return (f"Answer {i} ro{seed}", 0.5 + noise(i) + gain + 0.01 * seed * ((i % 3) - 1))
    return answer


def write_scores(url: str, checkpoints: dict[str, Answer]) -> None:
    store = Store(url)
    run_id = store.start_run("{}", 0, "test", heartbeat=False)
    for fp in checkpoints:
        store.upsert_checkpoint(run_id, fingerprint=fp, spec=f"/ckpt/{fp}", kind="peft", label=fp, metadata={})
    for task, (culture, pids) in TASKS.items():
        store.upsert_task(task_id=task, constitution_id=culture.lower(), culture=culture, n_prompts=N,
                          metadata={"principles": {p: p.upper() for p in pids}, "analyses": ["refusal"]},
                          prompts=[{"prompt_id": f"q{i:02d}", "prompt": f"Prompt {i} of {task}",
                                    "principle_id": principle(task, i), "reference": f"Reference {i}",
                                    "expect": "refuse" if i % 2 == 0 else "comply"} for i in range(N)])
    store.upsert_scorer_metrics("similarity", "h_sim", [MetricSpec("cosine", "higher", -1.0, 1.0)], {})
    ids = tuple(f"q{i:02d}" for i in range(N))
    for fp, answer in checkpoints.items():
        for task in TASKS:
            unit = Unit(fp, task, "g1", ids)
            store.insert_generations(run_id, unit, [(f"q{i:02d}", answer(task, i)[0], 0.1) for i in range(N)])
            pending, _ = store.pending_scores([unit], "similarity", "h_sim", 1)
            store.insert_scores(run_id, "similarity", "h_sim",
                                [(p.generation_id, ScoreRow.ok(str(p.generation_id), "cosine",
                                                               answer(task, int(p.prompt_id[1:]))[1]))
                                 for p in pending])
    store.finish_run(run_id, "finished")
    store.close()


def loop(name: str, eval_task: str, sft: str, dpo: str, out: Path, seed: int = 0) -> LoopRecord:
    return LoopRecord(loop_id=f"loop-{name}", title=f"{eval_task} ({name})",
                      fingerprints={"base": "base", "sft": sft, "dpo": dpo},
                      specs={"base": "bundled:smollm2-135m-instruct", "sft": f"/ckpt/{sft}", "dpo": f"/ckpt/{dpo}"},
                      eval_task=eval_task, tasks=sorted(TASKS), seed=0, n_boot=N_BOOT,
                      config={"out": str(out / "variants" / name), "train_seed": seed})


def culture_store(path: Path, out: Path) -> str:
    url = f"sqlite:///{path}"
    fps: dict[str, Answer] = {"base": base}
    variants, loops = [], []
    for task, culture, make in (("za_heldout", "za", za), ("ro_heldout", "ro", ro)):
        for seed in (0, 1):
            name = f"task={task}__train_seed={seed}"
            fps[f"sft_{culture}{seed}"] = make(seed, 0.5)
            fps[f"dpo_{culture}{seed}"] = make(seed)
            loops.append(loop(name, task, f"sft_{culture}{seed}", f"dpo_{culture}{seed}", out, seed))
            variants.append(VariantRecord(name, {"task": task, "train_seed": seed}, loop_id=f"loop-{name}",
                                          status="done"))
    write_scores(url, fps)
    store = Store(url)
    for lp in loops:
        store.put_loop(lp)
    store.put_experiment(ExperimentRecord(
        experiment_id="exp-cultures", title="cultures", axes={"task": list(TASKS), "train_seed": [0, 1]},
        variants=variants, seed=0, stage_counts={"eval": {"computed": 4, "shared": 0}}))
    store.close()
    return url


def ablation_store(path: Path, out: Path) -> str:
    url = f"sqlite:///{path}"
    write_scores(url, {"base": base, "sft_all": za(0, 0.5), "dpo_all": za(0), "sft_nopa": za(0, 0.5, True),
                       "dpo_nopa": za(0, drop_pa=True)})
    store = Store(url)
    store.put_loop(loop("none", "za_heldout", "sft_all", "dpo_all", out))
    store.put_loop(loop("pa", "za_heldout", "sft_nopa", "dpo_nopa", out))
    axis = "data.drop_principles"
    store.put_experiment(ExperimentRecord(
        experiment_id="exp-ablation", title="ablation", axes={axis: [[], ["pa"], ["pb"]]},
        variants=[VariantRecord(f"{axis}=none", {axis: []}, loop_id="loop-none", status="done"),
                  VariantRecord(f"{axis}=pa", {axis: ["pa"]}, loop_id="loop-pa", status="done"),
                  VariantRecord(f"{axis}=pb", {axis: ["pb"]}, status="gate", reason=GATE,
                                gate={"sft": {"kept": 3, "total": 40}})]))
    store.close()
    return url
