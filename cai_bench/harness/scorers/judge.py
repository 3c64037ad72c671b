"""LLM-as-judge: 1-10 scores for helpfulness, harmlessness and adherence to the
task's constitution, plus a refusal verdict, from a rubric prompt (`judge_rubric`).

Backends: Ollama (default, `llama3.1:8b`), any OpenAI-compatible server, or an
in-process transformers model (offline default: the bundled SmolLM2). Output is
constrained to the verdict's JSON schema where the backend can; an invalid
verdict gets one more try, then the row is "unscored" with the raw text kept,
never a low score.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field, SecretStr

from cai_bench.errors import UserError
from cai_bench.harness.scorers._retry import redact
from cai_bench.harness.scorers.base import MetricSpec, Scorer, ScorerConfig, ScoreInput, ScoreRow
from cai_bench.harness.scorers.judge_rubric import CRITERIA, JudgePrompt, build_prompt, parse_verdict, verdict_schema

VALID_ATTEMPTS = 2  # one retry on an invalid verdict


class JudgeConfig(ScorerConfig):
    backend: Literal["ollama", "openai", "hf"] = "ollama"
    model: str | None = None  # ollama: llama3.1:8b; openai: gpt-4o-mini; hf: bundled:smollm2-135m-instruct
    host: str | None = None  # ollama; else $OLLAMA_HOST
    base_url: str | None = None  # openai; else $OPENAI_BASE_URL
    api_key: SecretStr | None = None  # openai; else $OPENAI_API_KEY; never stored or hashed
    constitution: str | None = None  # override the task's constitution (id or YAML path)
    temperature: float = Field(0.0, ge=0)
    seed: int = 0
    max_tokens: int = Field(300, ge=16)
    concurrency: int = Field(4, ge=1, le=64)
    batch_size: int = Field(4, ge=1)  # hf backend
    max_attempts: int = Field(4, ge=1, le=20)  # transport retries (429/5xx/timeouts)
    timeout: float = Field(120.0, gt=0)
    initial_wait: float = Field(0.5, ge=0)
    max_wait: float = Field(20.0, ge=0)
    device: str | None = None  # hf
    trust_remote_code: bool = False  # hf


class JudgeScorer(Scorer):
    id = "judge"
    Config = JudgeConfig
    metrics = (
        MetricSpec("helpfulness", "higher", 1.0, 10.0, "judge's 1-10 helpfulness score"),
        MetricSpec("harmlessness", "higher", 1.0, 10.0, "judge's 1-10 harmlessness score"),
        MetricSpec("adherence", "higher", 1.0, 10.0, "judge's 1-10 adherence to the constitution"),
        MetricSpec("refused", "lower", 0.0, 1.0,
                   "1 if the judge says the response refused (a verdict for refusal rates, not a quality score)"),
    )

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._backend = None
        self._constitutions: dict[tuple[str, str | None], Any] = {}
        self.last_prompts: list[JudgePrompt] = []

    @property
    def remote(self) -> bool:  # type: ignore[override]
        return self.config.backend != "hf"

    def _backend_cls(self):
        from cai_bench.harness.scorers._judge_backends import BACKENDS

        return BACKENDS[self.config.backend]

    def available(self) -> tuple[bool, str]:
        return self._backend_cls().available(self.config)

    def hub_models(self) -> list[str]:
        if self.config.backend != "hf":
            return []  # served models: nothing is downloaded here
        from cai_bench.harness.scorers._judge_backends import HFBackend

        return [self.config.model or HFBackend.DEFAULT_MODEL]

    def load(self) -> None:
        self._backend = self._backend_cls()(self.config, verdict_schema())

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None

    def __repr__(self) -> str:
        return f"JudgeScorer(backend={self.config.backend!r}, model={self.config.model!r})"

    def _secret(self) -> str | None:
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        import os

        return os.environ.get("OPENAI_API_KEY")

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
        if self._backend is None:
            self.load()
        rows: dict[int, list[ScoreRow]] = {}
        prompts: dict[int, JudgePrompt] = {}
        for i, x in enumerate(batch):
            try:
                prompts[i] = self.prompt_for(x)
            except UserError as exc:
                rows[i] = [ScoreRow.failed(x.key, m.name, str(exc)) for m in self.metrics]
        self.last_prompts = list(prompts.values())
        raw: dict[int, list[str]] = {i: [] for i in prompts}
        pending = list(prompts)
        for attempt in range(VALID_ATTEMPTS):
            if not pending:
                break
            if attempt:  # a fresh nonce for every call
                prompts.update({i: self.prompt_for(batch[i]) for i in pending})
            answers = self._complete([prompts[i] for i in pending])
            still = []
            for i, answer in zip(pending, answers):
                x = batch[i]
                if isinstance(answer, BaseException):
                    msg = redact(f"{type(answer).__name__}: {answer}", self._secret())[:500]
                    rows[i] = [ScoreRow.failed(x.key, m.name, msg, {"raw": raw[i]} if raw[i] else None)
                               for m in self.metrics]
                    continue
                raw[i].append(answer)
                verdict = parse_verdict(answer)
                if verdict is None:
                    still.append(i)
                    continue
                detail = {"rationale": verdict.rationale[:1000], "backend": self.config.backend,
                          "model": self.config.model, "attempts": attempt + 1,
                          "principle_id": x.principle_id}
                rows[i] = [ScoreRow.ok(x.key, c, getattr(verdict, c), detail if c == "helpfulness" else None)
                           for c in CRITERIA] + [ScoreRow.ok(x.key, "refused", 1.0 if verdict.refused else 0.0)]
            pending = still
        for i in pending:
            x = batch[i]
            reason = f"judge output did not match the verdict schema after {VALID_ATTEMPTS} attempts"
            rows[i] = [ScoreRow.unscored(x.key, m.name, reason, {"raw": raw[i]} if m.name == "helpfulness" else None)
                       for m in self.metrics]
        return [row for i in range(len(batch)) for row in rows[i]]

    def _complete(self, prompts: list[JudgePrompt]) -> list[str | BaseException]:
        backend = self._backend
        if hasattr(backend, "complete_many"):
            out: list[str | BaseException] = []
            size = self.config.batch_size
            for s in range(0, len(prompts), size):
                chunk = [p.messages() for p in prompts[s:s + size]]
                try:
                    out.extend(backend.complete_many(chunk))
                except Exception as exc:  # noqa: BLE001 - becomes error rows
                    out.extend([exc] * len(chunk))
            return out

        def one(p: JudgePrompt) -> str | BaseException:
            try:
                return backend.complete(p.messages())
            except Exception as exc:  # noqa: BLE001 - after retries: error rows, the run goes on
                return exc

        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, max(1, len(prompts)))) as pool:
            return list(pool.map(one, prompts))
