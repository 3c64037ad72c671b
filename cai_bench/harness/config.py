"""The run config: one pydantic model for `cai-bench run`, loaded from YAML,
overridden by command-line flags, with checkpoint globs expanded and the
embedded default used when nothing is given.

Example YAML:

    checkpoints: [bundled:smollm2-135m-instruct, runs/train/*/checkpoint-*]
    tasks: [cai_south_africa, cai_romania]
    scorers: [similarity, {id: judge, backend: hf, model: ...}]
    limit: 8
    generation: {temperature: 0.0, top_p: 1.0, batch_size: 8, chat_template: true}  # max_new_tokens: the task's
"""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cai_bench.bootstrap_settings import MIN_N_BOOT, N_BOOT
from cai_bench.defaults import CHAT
from cai_bench.errors import UserError
from cai_bench.hashing import digest
from cai_bench.io import expand_user, format_validation, is_dir, line_of, load_yaml_mapping, parse_assignment, plain, set_path
from cai_bench.models.vllm_server import VllmSettings  # noqa: F401 - generation.vllm; re-exported

DEFAULT_OUT = "cai-bench-out"


class ScorerEntry(BaseModel):
    """A scorer id plus its settings (validated later by the scorer's own Config)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    settings: dict[str, Any] = Field(default_factory=dict)


class GenerationSettings(BaseModel):
    """Sampling for the model under test. `max_new_tokens=None` keeps each task's default."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    batch_size: int = Field(default=8, ge=1)
    chat_template: bool = True
    chunk_size: int = Field(default=32, ge=1)  # prompts per committed unit of work
    dtype: str = "auto"
    device: str | None = None  # None: cuda when available, else cpu
    engine: Literal["hf", "vllm"] = "hf"  # local checkpoints: lm-eval's HF model, or a vLLM server
    vllm: VllmSettings = Field(default_factory=VllmSettings)


class EndpointSettings(BaseModel):
    """Overrides for `openai:`/`ollama:` checkpoints (env vars otherwise)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key: str | None = None
    num_concurrent: int = Field(default=CHAT.concurrency, ge=1)  # requests in flight; 429/503 lower it for a while
    timeout: float = Field(default=120.0, gt=0)  # seconds per request
    max_attempts: int = Field(default=4, ge=1, le=20)  # calls per prompt (408/429/5xx/timeouts retried)


class WorkerSettings(BaseModel):
    """How this process shares a run with other `cai-bench run` processes on the
    same store (docs/scale.md). `count` > 1 starts that many local workers."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1)
    lease_seconds: float = Field(default=120.0, gt=0)  # a silent worker's units go to others after this
    poll_seconds: float = Field(default=2.0, gt=0)  # wait between looks while others finish


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoints: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)
    scorers: list[ScorerEntry] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    limit_mode: Literal["stratified", "head"] = "stratified"  # seeded sample over principles | first N
    out: Path = Path(DEFAULT_OUT)
    store: str | None = None
    seed: int = 0  # sampling, --limit draws and the report's bootstrap
    n_boot: int = Field(default=N_BOOT, ge=MIN_N_BOOT)  # bootstrap resamples of the report's CIs and p-values
    force: bool = False
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    openai: EndpointSettings = Field(default_factory=EndpointSettings)
    ollama: EndpointSettings = Field(default_factory=EndpointSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    report: bool = True
    hhh_path: str | None = None  # hhh_alignment's data file (None: $CAI_BENCH_HHH_PATH, shared data, `data fetch hhh`'s copy)
    download_models: bool = True  # False: scorers whose hub model is not cached are unavailable
    allow_self_grading: bool = False  # True: every scorer may judge its own model (harness.self_grading)

    @field_validator("scorers", mode="before")
    @classmethod
    def _scorers(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)):
            return v or []  # pydantic names the field ("Input should be a valid list"), never a TypeError
        return [_scorer_entry(x) for x in v]

    def public_json(self) -> str:
        """The config as stored in the runs table: no secrets (URLs' userinfo and
        query values, secret-named settings: `cai_bench.redact`)."""
        from cai_bench.redact import redact_obj

        data = self.model_dump(mode="json")
        for key in ("openai", "ollama"):
            data[key].pop("api_key", None)
        for s in data["scorers"]:
            for secret in ("api_key", "token", "password"):
                s["settings"].pop(secret, None)
        return json.dumps(redact_obj(data), sort_keys=True)


def _scorer_entry(x: Any) -> Any:
    if isinstance(x, ScorerEntry):
        return x
    if isinstance(x, str):
        return {"id": x, "settings": {}}
    if isinstance(x, dict) and "id" in x and "settings" not in x:
        return {"id": x["id"], "settings": {k: v for k, v in x.items() if k != "id"}}
    return x


def default_config() -> RunConfig:
    """The embedded default: SmolLM2 on the built-in culture tasks, every scorer
    that can run here (the others are listed as unavailable), a few prompts."""
    return RunConfig(
        checkpoints=["bundled:smollm2-135m-instruct"],
        tasks=["cai_south_africa", "cai_romania"],
        scorers=[ScorerEntry(id="all")],
        download_models=False,  # "every scorer that can run here" means without a 14 GB download
        limit=4,  # generation settings: each task's own, as in every other entry point
    )


def load_config_file(path: Path) -> RunConfig:
    """A run config from YAML; problems name the file, line and field."""
    path = Path(path)
    data = load_yaml_mapping(path, "checkpoints:, tasks:, scorers:, ...")
    raw = plain(data)
    if isinstance(raw.get("checkpoints"), str):
        raw["checkpoints"] = [raw["checkpoints"]]
    if isinstance(raw.get("tasks"), str):
        raw["tasks"] = [raw["tasks"]]
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(format_validation(path, exc, data)) from None
    # relative checkpoint globs/dirs resolve against the config file's folder when they exist there
    base = path.resolve().parent
    cfg.checkpoints = [relative_to_config(c, base) for c in cfg.checkpoints]
    if cfg.hhh_path:
        cfg.hhh_path = relative_to_config(cfg.hhh_path, base)
    _check_references(cfg, path, data)
    return cfg


def _check_references(cfg: RunConfig, path: Path, data: Any) -> None:
    """Checkpoint specs, task ids and scorer ids/settings named in the file
    exist, checked before anything runs, so a wrong one is reported at its line
    of the file (and no store is opened)."""
    from cai_bench.harness.scorers import scorer_class
    from cai_bench.models.specs import parse_spec
    from cai_bench.tasks import load_task
    from cai_bench.trust import trust_remote_code

    def fail(loc: tuple, exc: UserError) -> UserError:
        line = line_of(data, loc)
        where = f"{path}:{line}" if line else str(path)
        return UserError(f"{where}: {'.'.join(map(str, loc))}: {exc.message}", exit_code=exc.exit_code)

    for i, spec in enumerate(cfg.checkpoints):
        try:
            if any(ch in spec for ch in "*?[") and ":" not in spec.split("/")[0]:
                expand_checkpoints([spec])
            else:
                parse_spec(spec)
        except UserError as exc:
            raise fail(("checkpoints", i), exc) from None
    for i, tid in enumerate(cfg.tasks):  # a multiple_choice task's data file is found when the run starts
        try:
            load_task(tid)
        except UserError as exc:
            raise fail(("tasks", i), exc) from None
    raw = plain(data).get("scorers") or []
    for i, entry in enumerate(cfg.scorers):
        if entry.id == "all":
            continue
        try:
            cls = scorer_class(entry.id)
        except UserError as exc:
            raise fail(("scorers", i, "id"), exc) from None
        if entry.settings.get("trust_remote_code"):
            try:
                trust_remote_code(True, "")
            except UserError as exc:
                raise fail(("scorers", i, "trust_remote_code"), UserError(exc.message.removeprefix(": "))) from None
        if "panel" in entry.settings:  # each member is checked by its own Config, named by its place
            from cai_bench.harness.scorers import build_scorer

            try:
                build_scorer(entry.id, entry.settings)
            except UserError as exc:
                raise fail(("scorers", i, "panel"), exc) from None
            continue
        try:
            cls.Config(**entry.settings)
        except ValidationError as exc:
            flat = i < len(raw) and isinstance(raw[i], dict) and "settings" not in raw[i]
            raise UserError(format_validation(path, exc, data, prefix=("scorers", i) if flat
                                              else ("scorers", i, "settings"))) from None


def relative_to_config(spec: str, base: Path) -> str:
    """A relative checkpoint path or glob that exists only next to the config file
    (folder `base`) becomes that path; anything else is kept as given."""
    if ":" in spec.split("/")[0] or Path(spec).is_absolute():
        return spec
    if glob.glob(spec):
        return spec
    candidate = base / spec
    if glob.glob(str(candidate)):
        return str(candidate)
    return spec


def apply_overrides(cfg: RunConfig, **flags: Any) -> RunConfig:
    """Flags override the file: list flags replace the list when given; None means unset."""
    data = cfg.model_dump()
    gen = data["generation"]
    for key, value in flags.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if key in GenerationSettings.model_fields:
            gen[key] = value
        elif key in ("workers", "lease_seconds"):  # --workers N, --lease-seconds S
            data["workers"]["count" if key == "workers" else key] = value
        elif key in ("force", "allow_self_grading"):  # a flag turns on, never off, what the file set
            data[key] = data[key] or bool(value)
        elif key == "vllm_python":  # --vllm-python: generation.vllm.python
            gen.setdefault("vllm", {})["python"] = value
        else:
            data[key] = list(value) if isinstance(value, tuple) else value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation("run options", exc)) from None


def parse_scorer_set(item: str) -> tuple[str, list[str], Any]:
    """`judge.backend=hf` -> ("judge", ["backend"], "hf"); a dotted key (`judge.a.b=1`)
    sets a nested field. Read by `cai_bench.io.parse_assignment`, as every KEY=VALUE flag."""
    key, value = parse_assignment(item, "--scorer-set", form="SCORER.KEY=VALUE", min_parts=2)
    sid, *path = key.split(".")
    return sid, path, value


def apply_scorer_flags(cfg: RunConfig, ids: Sequence[str] = (), sets: Sequence[str] = ()) -> RunConfig:
    """`--scorer ID` and `--scorer-set ID.KEY=VALUE` over the config's scorers.

    `--scorer` chooses which scorers run; one the config already configures keeps
    the config's settings (and `all` keeps every configured one). `--scorer-set`
    then changes single settings; naming a scorer that is not in the run is an
    error rather than a silent no-op."""
    entries = [e.model_copy(deep=True) for e in cfg.scorers]
    if ids:
        configured = {e.id: e for e in entries}
        chosen: list[ScorerEntry] = []
        for sid in dict.fromkeys(ids):
            chosen.append(configured.get(sid) or ScorerEntry(id=sid))
        if "all" in ids:
            chosen += [e for e in entries if e.id not in ids and e.id != "all" and e.settings]
        entries = chosen
    by_id = {e.id: e for e in entries}
    for item in sets:
        sid, path, value = parse_scorer_set(item)
        entry = by_id.get(sid)
        if entry is None:
            if "all" not in by_id:
                run = ", ".join(by_id) or "none"
                raise UserError(f"--scorer-set {item!r}: scorer {sid!r} is not in this run (scorers: {run}); "
                                f"add --scorer {sid}")
            entry = by_id[sid] = ScorerEntry(id=sid)
            entries.append(entry)
        set_path(entry.settings, path, value, where=f"--scorer-set {item!r}")
    return cfg.model_copy(update={"scorers": entries})


def read_scorer_config(path: Path, scorer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Scorer settings from a YAML/JSON file: `{scorer: {setting: value}}`, or
    `{setting: value}` when one scorer is named. Every scorer id gets an entry."""
    from cai_bench.io import load_yaml_mapping

    out: dict[str, dict[str, Any]] = {s: {} for s in scorer_ids}
    data = plain(load_yaml_mapping(path, "settings (or scorer ids mapped to settings)"))
    if data and all(k in out and isinstance(v, dict) for k, v in data.items()):
        for k, v in data.items():
            out[k].update(v)
    elif len(scorer_ids) == 1:
        out[scorer_ids[0]].update(data)
    else:
        unknown = [k for k in data if k not in out]
        hint = f" ({', '.join(map(str, unknown))} not among them)" if unknown else ""
        raise UserError(f"{path}: with several scorers ({', '.join(scorer_ids)}), map each scorer id to its "
                        f"settings{hint}")
    return out


def expand_checkpoints(specs: list[str]) -> list[str]:
    """Glob patterns (`runs/train/*/checkpoint-*`) become the sorted matching dirs;
    a pattern matching nothing is an error naming it. Duplicates are dropped."""
    out: list[str] = []
    for spec in specs:
        if any(ch in spec for ch in "*?[") and ":" not in spec.split("/")[0]:
            matches = sorted(m for m in glob.glob(str(expand_user(spec))) if is_dir(m))
            if not matches:
                raise UserError(f"checkpoint pattern {spec!r} matches no directory")
            out.extend(matches)
        else:
            out.append(spec)
    seen: set[str] = set()
    return [s for s in out if not (s in seen or seen.add(s))]


def gen_hash(*, max_new_tokens: int, temperature: float, top_p: float, chat_template: bool, seed: int,
             engine: str = "hf") -> str:
    """Identity of the generation settings: any change means new generations. The
    engine is part of it (HF and vLLM answers differ even greedy); "hf" adds
    nothing, so hashes stored before engines existed still match."""
    fields: dict[str, object] = {"max_new_tokens": int(max_new_tokens), "temperature": float(temperature),
                                 "top_p": float(top_p), "chat_template": bool(chat_template), "seed": int(seed)}
    if engine != "hf":
        fields["engine"] = engine
    return digest(fields, compact=False, ensure_ascii=True)  # the form stored generations are keyed by
