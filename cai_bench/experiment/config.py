"""An experiment file: a pipeline config (`base:`) and the axes to vary (`vary:`).

    title: contextual vs random            # optional
    correction: holm                       # or bh (Benjamini-Hochberg); optional, holm by default
    base: {task: cai_south_africa, profile: cpu-small}
    vary:
      data.selection: [random, contextual]
      train_seed: [0, 1]

The product of the axes is the set of variants; each is an ordinary pipeline config
with `out` under `<out>/variants/<name>/` and one results store for all. Every bad
axis (unknown key, empty list, a value the pipeline config rejects) stops the
experiment before anything runs, as `file:line: vary.KEY: reason`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai_bench.errors import UserError
from cai_bench.hashing import digest
from cai_bench.pipeline.config import PipelineConfig, build_config, resolve_relative
from cai_bench.results.schema import normalize_url

TOP_KEYS = ("title", "correction", "base", "vary")
CORRECTIONS = ("holm", "bh")
# keys an axis may not take: the experiment owns them
OWNED = {"out": "each variant's out is <out>/variants/<name>/ (give the experiment's folder with --out or base.out)",
         "eval.store": "the variants share one store (set base.eval.store to choose it)"}
MAX_NAME = 80  # longer variant names become a prefix and a hash
DEFAULT_OUT = "runs/experiment"


@dataclass
class Variant:
    name: str  # its folder under <out>/variants/: readable and filesystem-safe
    values: dict[str, Any]  # axis -> the value it takes
    cfg: PipelineConfig
    raw: dict[str, Any] = field(default_factory=dict)  # the pipeline mapping it was built from


@dataclass
class ExperimentSpec:
    out: Path
    title: str
    axes: dict[str, list[Any]]
    correction: str
    store: str  # the shared store's URL (eval.store of every variant)
    variants: list[Variant]
    config: dict[str, Any]  # base + vary as given (recorded with the experiment)
    source: str


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "+".join(_value_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    return Path(text).name if "/" in text else text  # a task folder or file: its name reads best


def variant_name(values: dict[str, Any]) -> str:
    """`key=value` per axis joined by `__`, with only [A-Za-z0-9._+=-]; a long one keeps a prefix and a hash
    of the values (so two long names never meet)."""
    name = "__".join(f"{k}={_value_text(v)}" for k, v in values.items())
    name = re.sub(r"[^A-Za-z0-9._+=-]+", "-", name).strip("-.") or "variant"
    if len(name) > MAX_NAME:
        name = f"{name[:MAX_NAME - 9].rstrip('-_.')}-{digest(values, length=8)}"
    return name


def check_axis_key(key: str) -> str | None:
    """Why `key` cannot be an axis (unknown, a value used as a section, owned by the experiment), or None."""
    from cai_bench.io import _flat, _is_model, did_you_mean

    if key in OWNED:
        return f"cannot be varied: {OWNED[key]}"
    model: Any = PipelineConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            where = "pipeline config key" if i == 0 else f"key of {'.'.join(parts[:i])}"
            return f"unknown {where} {part!r}{did_you_mean(part, list(fields))}"
        models = [t for t in _flat(fields[part].annotation) if _is_model(t)]
        if i < len(parts) - 1:
            if not models:
                return f"{'.'.join(parts[:i + 1])} is a value, not a section"
            model = models[0]
    return None


def _with(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    from cai_bench.io import set_path

    out = copy.deepcopy(raw)
    for key, value in values.items():
        set_path(out, key.split("."), copy.deepcopy(value), where=f"vary.{key}")
    return out


def _reason(exc: UserError, tag: str) -> str:
    return exc.message.replace(f"{tag}: ", "")


def _try(raw: dict[str, Any], *, inputs: bool) -> str | None:
    """Why this pipeline mapping is not a valid config (None when it is); `inputs`: the task, constitution
    and prompts must load too."""
    from cai_bench.pipeline.stages import check_inputs

    tag = "\x00axis"
    try:
        cfg = build_config(raw, source=tag)
        if inputs:
            check_inputs(cfg)
    except UserError as exc:
        return _reason(exc, tag)
    return None


def _check_has_effect(cfg: Any, values: dict[str, Any], where: dict[str, str], source: str) -> None:
    """An axis over a setting of generated data, in a variant whose data is the bundled GPT-4o rows,
    compares nothing: every such variant trains on the same rows, and a report would still
    show a "contextual vs random" comparison. Refused before anything runs."""
    from cai_bench.pipeline.config import GENERATE_ONLY_DATA

    for key in values:
        section, _, name = key.partition(".")
        if section == "data" and name in GENERATE_ONLY_DATA and cfg.data_source == "bundled":
            raise UserError(f"{where.get(key, source)}: vary.{key}: has no effect with data.source bundled: the "
                            f"bundled GPT-4o rows of {cfg.task} are fixed, so every variant would train on the same "
                            "data. Fix: set base.data.source: generate (a model writes the data with each value; "
                            "docs/pipeline.md)")


def build_spec(base: dict[str, Any], axes: dict[str, Any], *, where: dict[str, str], source: str,
               base_lines: dict[str, int] | None, out: Path | None, correction: str = "holm",
               title: str | None = None) -> ExperimentSpec:
    """Validated axes and one pipeline config per variant; `where[key]` starts each axis's errors
    (`file:line` or the flag)."""
    if not axes:
        raise UserError(f"{where.get('', source)}: vary: give at least one axis (a pipeline config key and its "
                        "values, e.g. train_seed: [0, 1])")
    inputs_keys = {"task", "constitution", "prompts", "synthesize"}
    for key, values in axes.items():
        at = where.get(key, source)
        if (why := check_axis_key(key)) is not None:
            raise UserError(f"{at}: vary.{key}: {why}")
        if not isinstance(values, list) or not values:
            raise UserError(f"{at}: vary.{key}: give a non-empty list of values (got {values!r})")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen):
            dup = next(v for v, s in zip(values, seen) if seen.count(s) > 1)
            raise UserError(f"{at}: vary.{key}: value {dup!r} is given twice")
    firsts = {k: v[0] for k, v in axes.items()}
    for key, values in axes.items():  # each value beside the other axes' first values: a bad one names its axis
        others = {k: v for k, v in firsts.items() if k != key}
        without = _try(_with(base, others), inputs=False)
        for value in values:
            why = _try(_with(base, {**others, key: value}), inputs=key.split(".")[0] in inputs_keys)
            if why is not None and (without is None or why != without):
                raise UserError(f"{where.get(key, source)}: vary.{key}: value {value!r}: {why}")
    out = Path(out or base.get("out") or DEFAULT_OUT).expanduser().resolve()
    store_value = (base.get("eval") or {}).get("store") if isinstance(base.get("eval"), dict) else None
    store = normalize_url(str(store_value) if store_value else None, str(out))
    variants: list[Variant] = []
    names: set[str] = set()
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        name = variant_name(values)
        if name in names:  # two values that read the same once made filesystem-safe
            name = f"{name[:MAX_NAME - 9]}-{digest(values, length=8)}"
        names.add(name)
        raw = _with(base, values)
        raw["out"] = str(out / "variants" / name)
        raw.setdefault("eval", {})
        raw["eval"] = {**(raw["eval"] or {}), "store": store}
        cfg = build_config(raw, source=source, lines=base_lines)  # the base's own problems, at its lines
        _check_has_effect(cfg, values, where, source)
        variants.append(Variant(name, values, cfg, raw))
    config = {"base": base, "vary": axes}
    title = title or f"experiment over {' x '.join(axes)}"
    return ExperimentSpec(out=out, title=title, axes=dict(axes), correction=correction, store=store,
                          variants=variants, config=config, source=source)


def load_experiment_file(path: Path, *, out: Path | None = None) -> ExperimentSpec:
    """An exp.yaml: `base:` (a pipeline config, relative paths resolved against the file's folder),
    `vary:`, and optional `correction:` and `title:`."""
    from cai_bench.io import Located, did_you_mean, load_yaml, plain

    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, Located):
        raise UserError(f"{path}:1: an experiment file must be a mapping with base: and vary:")
    for key, line in data.lines.items():
        if key not in TOP_KEYS:
            raise UserError(f"{path}:{line}: {key}: unknown field{did_you_mean(str(key), TOP_KEYS)}; "
                            f"an experiment file has {', '.join(TOP_KEYS)}")
    if "vary" not in data:
        raise UserError(f"{path}:{data.line}: vary: required field missing (the pipeline config keys to vary)")
    base_node = data.get("base") or Located({}, {}, data.lines.get("base", 1))
    vary_node = data["vary"]
    if not isinstance(base_node, Located):
        raise UserError(f"{path}:{data.lines['base']}: base: must be a pipeline config mapping")
    if not isinstance(vary_node, Located):
        raise UserError(f"{path}:{data.lines['vary']}: vary: must map pipeline config keys to lists of values")
    correction = data.get("correction", "holm")
    if correction not in CORRECTIONS:
        raise UserError(f"{path}:{data.lines['correction']}: correction: {correction!r} is not one of "
                        f"{', '.join(CORRECTIONS)}")
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise UserError(f"{path}:{data.lines['title']}: title: must be text")
    base = resolve_relative(plain(base_node), path.resolve().parent)
    store = (base.get("eval") or {}).get("store") if isinstance(base.get("eval"), dict) else None
    if isinstance(store, str) and "://" not in store and not Path(store).expanduser().is_absolute():
        base["eval"]["store"] = str(path.resolve().parent / store)  # beside the file, as the other paths
    base_lines = {k: v for k, v in base_node.lines.items() if isinstance(k, str)}
    where = {str(k): f"{path}:{line}" for k, line in vary_node.lines.items()}
    where[""] = f"{path}:{data.lines['vary']}"
    return build_spec(base, {str(k): plain(v) for k, v in vary_node.items()}, where=where, source=str(path),
                      base_lines=base_lines, out=out, correction=correction, title=title)


def parse_vary(item: str) -> tuple[str, list[Any]]:
    """`KEY=v1,v2` (each value YAML, so `[a,b]` is a list): the axis of one `--vary`."""
    from cai_bench.io import parse_assignment, safe_yaml

    head, _, text = item.partition("=")
    key, _ = parse_assignment(f"{head}=" if "=" in item else head, "--vary", form="KEY=VALUE1,VALUE2,...")
    text = text.strip()
    try:
        values = safe_yaml(f"[{text}]", f"--vary {item!r}") if text else []
    except Exception as exc:  # noqa: BLE001 - yaml's errors: one line naming the flag
        reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise UserError(f"--vary {item!r}: the values are not valid YAML ({reason})") from None
    return key, list(values)


def spec_from_vary(base: dict[str, Any], items: list[str], *, source: str, base_lines: dict[str, int] | None,
                   out: Path | None) -> ExperimentSpec:
    """`cai-bench pipeline ... --vary KEY=v1,v2`: the same engine as an experiment file."""
    axes: dict[str, Any] = {}
    where: dict[str, str] = {}
    for item in items:
        key, values = parse_vary(item)
        if key in axes:
            raise UserError(f"--vary {item!r}: {key} is varied twice")
        axes[key], where[key] = values, f"--vary {item!r}"
    return build_spec(base, axes, where=where, source=source, base_lines=base_lines, out=out)
