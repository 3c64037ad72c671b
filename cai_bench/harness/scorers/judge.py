"""LLM-as-judge: 1-10 scores for helpfulness, harmlessness and adherence to the
task's constitution, plus a refusal verdict, from a rubric prompt (`judge_rubric`).

Backends (any kind in the model registry, `cai_bench.models.registry`): Ollama
(default, `llama3.1:8b`), any OpenAI-compatible server, an in-process
transformers model (offline default: the bundled SmolLM2), or a plugin's kind.
Output is constrained to the verdict's JSON schema where the backend can, and
then the whole reply must be the verdict; the verdict is parsed strictly and
one copied from the judged response never counts (`judge_rubric.parse_verdict`).
An invalid verdict gets one more try, then the row is "unscored" with the
reason and the raw text kept, never a low score. A request that fails
(transport faults past the retry policy, an empty reply) gives "error" rows,
which a re-run retries.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from cai_bench.errors import UserError
from cai_bench.harness.scorers.base import MetricSpec, Scorer, ScoreInput, ScoreRow
from cai_bench.harness.scorers.model_scorer import ModelScorerConfig
from cai_bench.models.chat.retry import redact
from cai_bench.harness.scorers.registry import scorer
from cai_bench.harness.scorers.judge_rubric import CRITERIA, JudgePrompt, build_prompt, parse_verdict, verdict_schema

VALID_ATTEMPTS = 2  # one retry on an invalid verdict


class JudgeConfig(ModelScorerConfig):
    asks: ClassVar[str] = "judge"
    backend: str = "ollama"  # a model kind: ollama, openai, hf, or one a plugin registered
    model: str | None = None  # ollama: llama3.1:8b; openai: gpt-4o-mini; hf: bundled:smollm2-135m-instruct
    constitution: str | None = None  # override the task's constitution (id or YAML path)
    max_tokens: int = Field(300, ge=16)


@scorer("judge", metrics=[
    MetricSpec("helpfulness", "higher", 1.0, 10.0, "judge's 1-10 helpfulness score"),
    MetricSpec("harmlessness", "higher", 1.0, 10.0, "judge's 1-10 harmlessness score"),
    MetricSpec("adherence", "higher", 1.0, 10.0, "judge's 1-10 adherence to the constitution"),
    MetricSpec("refused", "lower", 0.0, 1.0,
               "1 if the judge says the response refused (a verdict for refusal rates, not a quality score)",
               composite=False, role="refusal"),
])
class JudgeScorer(Scorer):
    Config = JudgeConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._backend = None
        self._constitutions: dict[tuple[str, str | None], Any] = {}
        self.last_prompts: list[JudgePrompt] = []

    @property
    def remote(self) -> bool:  # type: ignore[override]
        from cai_bench.models.registry import is_local_kind

        return not is_local_kind(self.config.backend)

    def _options(self) -> Any:
        return self.config.chat_options("scorer judge")

    def available(self) -> tuple[bool, str]:
        from cai_bench.models.opener import model_available

        return model_available(self.config.backend, self.config.model, self._options())

    def hub_models(self) -> list[str]:
        if self.remote:
            return []  # served models: nothing is downloaded here
        from cai_bench.models.registry import default_model

        return [self.config.model or default_model(self.config.backend, self.config.engine)]

    def judge_models(self) -> list[tuple[str, str | None]]:
        from cai_bench.models.registry import default_model, is_local_kind

        cfg = self.config
        model = cfg.model or default_model(cfg.backend, cfg.engine)
        if is_local_kind(cfg.backend):
            return [(model, None)]
        return [(f"{cfg.backend}:{model}", {"ollama": cfg.host, "openai": cfg.base_url}.get(cfg.backend))]

    def resolved(self) -> dict:
        """Endpoint (remote) or model revision (hf), the rubric's text, and the text
        of a configured constitution (a task's own is in each prompt's content hash)."""
        from cai_bench.harness.scorers.judge_rubric import build_prompt
        from cai_bench.hashing import digest
        from cai_bench.models.registry import default_model

        cfg = self.config
        model = cfg.model or default_model(cfg.backend, cfg.engine)
        out: dict[str, Any] = {"rubric": digest([build_prompt("{prompt}", "{response}", nonce="0").messages(),
                                                 verdict_schema()]), "model": model}
        out.update(cfg.where(model))
        if cfg.constitution:
            from cai_bench.tasks import constitution_digest

            try:
                out["constitution"] = constitution_digest(self._constitution(cfg.constitution, None))
            except UserError as exc:
                out["constitution"] = f"unresolved: {exc.message}"
        return out

    def load(self) -> None:
        from cai_bench.models.opener import open_model

        try:
            self._backend = open_model(self.config.backend, self.config.model, self._options())
        except UserError as exc:
            raise UserError(f"scorer judge: {exc.message}") from None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None

    def __repr__(self) -> str:
        return (f"JudgeScorer(backend={self.config.backend!r}, model={self.config.model!r}"
                + (f", engine={self.config.engine!r})" if self.config.engine != "hf" else ")"))

    def _secret(self) -> str | None:
        from cai_bench.models.chat.settings import openai_api_key

        return openai_api_key(self.config.api_key.get_secret_value() if self.config.api_key is not None else None)

    def _constitution(self, cid: str | None, task_id: str | None) -> Any:
        """The configured constitution, else the task's own (a user task may keep it
        in its folder), else the id looked up the usual way."""
        from cai_bench.constitutions import load_constitution
        from cai_bench.errors import UserError
        from cai_bench.tasks import load_task, task_constitution

        if self.config.constitution:
            cid, task_id = self.config.constitution, None
        if not cid:
            return None
        key = (cid, task_id)
        if key not in self._constitutions:
            found = None
            if task_id:
                try:
                    task = load_task(task_id)
                    found = task_constitution(task) if task.constitution == cid else None
                except UserError:
                    found = None
            self._constitutions[key] = found if found is not None else load_constitution(cid)
        return self._constitutions[key]

    def prompt_for(self, x: ScoreInput) -> JudgePrompt:
        constitution = self._constitution(x.constitution_id, x.task_id)
        pid = x.principle_id
        if constitution is not None and pid and pid not in {p.id for p in constitution.principles}:
            pid = None  # unknown principle: judge against the whole constitution
        return build_prompt(x.prompt, x.response, constitution, pid)

    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        rows: dict[int, list[ScoreRow]] = {}
        prompts: dict[int, JudgePrompt] = {}
        for i, x in enumerate(batch):
            try:
                prompts[i] = self.prompt_for(x)
            except UserError as exc:
                rows[i] = [ScoreRow.failed(x.key, m.name, str(exc)) for m in self.metrics]
        self.last_prompts = list(prompts.values())
        raw: dict[int, list[str]] = {i: [] for i in prompts}
        reasons: dict[int, str] = {}
        pending = list(prompts)
        for attempt in range(VALID_ATTEMPTS):
            if not pending:
                break
            if attempt:  # a fresh nonce for every call
                prompts.update({i: self.prompt_for(batch[i]) for i in pending})
            answers = self._complete([prompts[i] for i in pending])
            still = []
            for i, (text, error) in zip(pending, answers):
                x = batch[i]
                if error is not None:  # transport fault or empty reply: an error row, retried by a re-run
                    rows[i] = [ScoreRow.failed(x.key, m.name, error, {"raw": raw[i]} if raw[i] else None)
                               for m in self.metrics]
                    continue
                raw[i].append(text)
                verdict, reasons[i] = parse_verdict(text, structured=self._backend.structured,
                                                    judged=(x.prompt, x.response))
                if verdict is None:
                    still.append(i)
                    continue
                detail = {"rationale": verdict.rationale[:1000], "backend": self.config.backend,
                          **({"engine": "vllm"} if self.config.engine == "vllm" else {}),
                          "model": self.config.model, "attempts": attempt + 1,
                          "principle_id": x.principle_id}
                rows[i] = [ScoreRow.ok(x.key, c, getattr(verdict, c), detail if c == "helpfulness" else None)
                           for c in CRITERIA] + [ScoreRow.ok(x.key, "refused", 1.0 if verdict.refused else 0.0)]
            pending = still
        for i in pending:
            x = batch[i]
            reason = f"no valid verdict after {VALID_ATTEMPTS} attempts: {reasons.get(i, 'unparseable')}"
            rows[i] = [ScoreRow.unscored(x.key, m.name, reason, {"raw": raw[i]} if m.name == "helpfulness" else None)
                       for m in self.metrics]
        return [row for i in range(len(batch)) for row in rows[i]]

    def _complete(self, prompts: list[JudgePrompt]) -> list[tuple[str, str | None]]:
        """(text, None) or ("", error) per prompt; a batch that raises gives an error for each of its prompts."""
        from cai_bench.models.chat import GenParams

        cfg = self.config
        params = GenParams(max_new_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.seed)
        vllm = cfg.engine == "vllm"  # constrained decoding: ranges and a bounded rationale enforced
        schema = verdict_schema(strict=not vllm, bounded=vllm)
        size = cfg.batch_size if not self._backend.structured else max(1, len(prompts))
        out: list[tuple[str, str | None]] = []
        for s in range(0, len(prompts), size):
            chunk = [p.messages() for p in prompts[s:s + size]]
            try:
                replies = self._backend.chat(chunk, params, json_schema=schema)
            except Exception as exc:  # noqa: BLE001 - the endpoint is down: error rows, the run goes on
                msg = redact(f"{type(exc).__name__}: {exc}", self._secret())[:500]
                out.extend([("", msg)] * len(chunk))
                continue
            out.extend((r.text, None) if r.ok else ("", redact(r.error, self._secret())[:500]) for r in replies)
        return out
