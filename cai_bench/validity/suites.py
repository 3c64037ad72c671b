"""Validation suites: human-labelled rows (or answer pairs) a scorer is measured
against. Built-in suites read public files that cai-bench does not ship (no
stated license, or share-alike text): from `--data PATH`, else from a cached
download of their public source (commit-pinned) when downloads are allowed.
Users register their own suite folders (`suite.yaml` + a data file)."""

from __future__ import annotations

import csv
import io
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal


from cai_bench.errors import UserError
from cai_bench.paths import atomic_write_bytes, cai_bench_home

Kind = Literal["binary", "graded", "pairwise"]


@dataclass(frozen=True)
class LabelledRow:
    """One answer with a human label (binary 0/1 or a graded number)."""

    id: str
    prompt: str
    response: str
    label: float
    reference: str | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # other columns: culture, ...


@dataclass(frozen=True)
class Pair:
    """Two answers to one prompt; humans judged `better` better than `worse`."""

    id: str
    prompt: str
    better: str
    worse: str
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # other columns: culture, ...


@dataclass
class Suite:
    """What a suite holds and how to read it; `metrics` maps a scorer id to the
    metrics the suite validates by default for it."""

    name: str
    kind: Kind
    description: str
    metrics: dict[str, tuple[str, ...]]
    positive_is: Literal["bad", "good"] = "bad"
    label: str = "label"
    caveat: str = ""
    source: str = ""
    license: str = ""
    files: tuple[str, ...] = ()  # file names looked up under --data; downloaded from `urls`
    urls: tuple[str, ...] = ()
    loader: Callable[[list[Path]], list] | None = None
    folder: Path | None = None  # user suites: where suite.yaml lives
    aliases: tuple[str, ...] = field(default=())
    culture: str | None = None  # a suite of one culture's data: its validations count for that culture

    def load(self, data: Path | None = None) -> list:
        """Rows (binary/graded) or pairs (pairwise) of this suite."""
        assert self.loader is not None
        return self.loader(self.locate(data))

    def locate(self, data: Path | None) -> list[Path]:
        if self.folder is not None:  # a user suite keeps its data beside suite.yaml; --data is for built-ins
            return [self.folder / f for f in self.files]
        if data is not None:
            return [_find(Path(data).expanduser(), f, self.name) for f in self.files]
        return [_cached_download(self.name, Path(f).name, url) for f, url in zip(self.files, self.urls)]


# ---------------------------------------------------------------- locating data

def _find(data: Path, name: str, suite: str) -> Path:
    """`data` is the file itself (one-file suites) or a folder holding `name` (a
    relative path such as `evals/X.jsonl`) at that path, by its base name, or below."""
    if data.is_file():
        return data
    if not data.is_dir():
        raise UserError(f"--data {data}: no such file or folder (suite {suite!r} needs {name})")
    base = Path(name).name
    for direct in (data / name, data / base):
        if direct.is_file():
            return direct
    hits = sorted(p for p in data.rglob(base) if p.is_file())
    if len(hits) > 1:
        hits = [p for p in hits if p.as_posix().endswith(name)] or hits
    if not hits:
        raise UserError(f"--data {data}: no file named {base} in it or below (suite {suite!r})")
    if len(hits) > 1:
        raise UserError(f"--data {data}: several files named {base} ({', '.join(map(str, hits[:3]))}); "
                        f"point --data at the one for suite {suite!r}")
    return hits[0]


def downloads_allowed() -> bool:
    flags = ("CAI_BENCH_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return not any(os.environ.get(f, "0").lower() in ("1", "true", "yes") for f in flags)


def _cached_download(suite: str, name: str, url: str) -> Path:
    dest = cai_bench_home() / "validity" / suite / name
    if dest.is_file():
        return dest
    if not url:
        raise UserError(f"suite {suite!r}: its data is not shipped and has no public URL; "
                        f"give the file with --data PATH ({name})")
    if not downloads_allowed():
        raise UserError(f"suite {suite!r}: {name} is not cached and downloads are off (HF_HUB_OFFLINE/"
                        f"CAI_BENCH_OFFLINE); give a local copy with --data PATH, or fetch {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - fixed https URL
            blob = resp.read()
    except OSError as exc:
        raise UserError(f"suite {suite!r}: could not download {url} ({exc}); "
                        f"give a local copy with --data PATH") from None
    atomic_write_bytes(dest, blob)
    return dest


# ---------------------------------------------------------------- readers

def _jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file (through the one reader), each with its `_line`."""
    from cai_bench.io import read_jsonl

    return [{**row, "_line": n} for n, row in read_jsonl(path, what="rows", allow_empty=True)]


def read_table(path: Path) -> list[dict]:
    """Rows of a .jsonl/.json-lines, .csv or .tsv file as dicts (`_line` = the line/row number)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _jsonl(path)
    if suffix in (".csv", ".tsv"):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        rows = []
        for n, row in enumerate(reader, start=2):
            row = {k: v for k, v in row.items() if k is not None}
            row["_line"] = n
            rows.append(row)
        return rows
    raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv or .tsv")


def split_transcript(text: str) -> tuple[str, str]:
    """("Human: ... Assistant: ...", final answer) of an HH-style transcript."""
    text = text.strip("\n")
    i = text.rfind("\n\nAssistant:")
    if i < 0:
        raise ValueError("no 'Assistant:' turn")
    prompt, answer = text[:i].strip(), text[i + len("\n\nAssistant:"):].strip()
    if prompt.startswith("Human:") and "\n\nAssistant:" not in prompt:
        prompt = prompt[len("Human:"):].strip()  # one turn: the plain question
    return prompt, answer


# ---------------------------------------------------------------- built-in loaders

HVE_HEAD = "Here is a conversation between a human and an assistant:\n\n"
HVE_TAIL = "\n\nChoose the option that best characterizes the behavior of the assistant"


def load_harmful_vs_ethical(paths: list[Path]) -> list[LabelledRow]:
    """HarmfulVsEthical.jsonl: one conversation per row; (A) = the assistant was
    harmful or unethical, (B) = it behaved ethically. Label 1 = harmful."""
    out = []
    for row in _jsonl(paths[0]):
        where = f"{paths[0]}:{row['_line']}"
        prompt = row.get("prompt")
        corrects = row.get("corrects")
        if not isinstance(prompt, str) or HVE_TAIL not in prompt:
            raise UserError(f"{where}: field 'prompt' is not a HarmfulVsEthical question")
        if not isinstance(corrects, list) or len(corrects) != 1 or corrects[0].strip() not in ("(A)", "(B)"):
            raise UserError(f"{where}: field 'corrects' must be [' (A)'] or [' (B)']")
        conv = prompt[len(HVE_HEAD):prompt.rfind(HVE_TAIL)] if prompt.startswith(HVE_HEAD) else prompt
        try:
            human, answer = split_transcript(conv)
        except ValueError as exc:
            raise UserError(f"{where}: field 'prompt': {exc}") from None
        out.append(LabelledRow(f"hve-{row['_line']}", human, answer, 1.0 if corrects[0].strip() == "(A)" else 0.0))
    return out


def load_hhh_pairs(paths: list[Path]) -> list[Pair]:
    """438HHHEvaluations.jsonl: the same conversation with the human-preferred (more
    helpful, honest and harmless) final answer and the other one."""
    out = []
    for row in _jsonl(paths[0]):
        where = f"{paths[0]}:{row['_line']}"
        for key in ("text_correct", "text_incorrect"):
            if not isinstance(row.get(key), str):
                raise UserError(f"{where}: field {key!r} is missing or not a string")
        try:
            p1, better = split_transcript(row["text_correct"])
            p2, worse = split_transcript(row["text_incorrect"])
        except ValueError as exc:
            raise UserError(f"{where}: {exc}") from None
        if p1 != p2:
            raise UserError(f"{where}: text_correct and text_incorrect have different conversations")
        out.append(Pair(f"hhh-{row['_line']}", p1, better, worse))
    return out


def load_jigsaw(paths: list[Path]) -> list[LabelledRow]:
    """Jigsaw 2018 toxic-comment rows: the comment is the "response" (no prompt);
    label 1 = toxic. Rows labelled -1 (not scored in the Kaggle test) are left out."""
    out = []
    for path in paths:
        for row in read_table(path):
            where = f"{path}:{row['_line']}"
            text, toxic = row.get("comment_text"), row.get("toxic")
            if text is None or toxic is None:
                raise UserError(f"{where}: fields 'comment_text' and 'toxic' are needed")
            try:
                y = int(toxic)
            except ValueError:
                raise UserError(f"{where}: field 'toxic' must be 0 or 1, got {toxic!r}") from None
            if y == -1:
                continue
            if y not in (0, 1):
                raise UserError(f"{where}: field 'toxic' must be 0 or 1, got {toxic!r}")
            out.append(LabelledRow(f"{path.stem}-{row.get('id') or row['_line']}", "", text, float(y)))
    return out


def load_stsb(paths: list[Path]) -> list[LabelledRow]:
    """STS-B: sentence pairs with a 0-5 (or 0-1) similarity score. Reads a file with
    columns sentence1, sentence2, score|label (csv/tsv/jsonl: GLUE and the
    sentence-transformers/stsb export), or the original headerless sts-test.csv."""
    path = paths[0]
    rows = _stsb_original(path) if path.suffix.lower() == ".csv" and _headerless(path) else read_table(path)
    out = []
    for row in rows:
        where = f"{path}:{row['_line']}"
        score = row.get("score", row.get("label"))
        s1, s2 = row.get("sentence1"), row.get("sentence2")
        if s1 is None or s2 is None or score in (None, ""):
            raise UserError(f"{where}: fields 'sentence1', 'sentence2' and 'score' are needed")
        try:
            y = float(score)
        except (TypeError, ValueError):
            raise UserError(f"{where}: field 'score' must be a number, got {score!r}") from None
        out.append(LabelledRow(f"stsb-{row['_line']}", "", str(s1), y, reference=str(s2)))
    return out


def _headerless(path: Path) -> bool:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return "sentence1" not in first and "\t" in first


def _stsb_original(path: Path) -> list[dict]:
    """sts-{train,dev,test}.csv of the STS benchmark: genre, file, year, id, score, s1, s2 (tabs)."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) < 7:
            raise UserError(f"{path}:{n}: expected 7 tab-separated fields (genre, file, year, id, score, "
                            f"sentence1, sentence2)")
        rows.append({"score": parts[4], "sentence1": parts[5], "sentence2": parts[6], "_line": n})
    return rows


REDTEAM_LANGUAGE = "en"  # both culture red-team sets are written in English
BUILTIN_TASKS = Path(__file__).resolve().parents[1] / "tasks" / "builtin"  # the packaged culture tasks' files


def load_redteam_pairs(task_ids: tuple[str, ...]) -> Callable[[list[Path]], list[Pair]]:
    """Pairs from built-in culture tasks: each red-team prompt with its constitution-aligned
    answer (`reference`, the set's "correct" response) as better and its misaligned one
    (`rejected`, the "incorrect" response) as worse; culture, language, task and principle
    ride along as columns a validation can be split by (`--by culture`)."""

    def load(_paths: list[Path]) -> list[Pair]:
        from cai_bench.io import load_yaml_mapping, plain

        out = []
        for tid in task_ids:  # the packaged files, read as files: tasks/ is a layer above this one
            folder = BUILTIN_TASKS / tid
            task = plain(load_yaml_mapping(folder / "task.yaml", "id, constitution, culture, prompts"))
            for p in _jsonl(folder / str(task.get("prompts", "prompts.jsonl"))):
                where = f"{folder / 'prompts.jsonl'}:{p['_line']}"
                if not all(isinstance(p.get(k), str) and p.get(k) for k in ("id", "prompt", "reference", "rejected")):
                    raise UserError(f"{where}: a red-team pair needs id, prompt, reference (the correct answer) "
                                    f"and rejected (the incorrect one)")
                out.append(Pair(f"{tid}:{p['id']}", p["prompt"], p["reference"], p["rejected"],
                                {"culture": str(task["culture"]), "language": REDTEAM_LANGUAGE, "task_id": tid,
                                 "constitution_id": str(task["constitution"]),
                                 "principle_id": str(p.get("principle_id") or "")}))
        return out

    return load


CAI_PAPER = "https://raw.githubusercontent.com/anthropics/ConstitutionalHarmlessnessPaper/" \
            "831f7813dbafab659a526d7452f7adeac464b796/evals/"
DETOXIFY = "https://raw.githubusercontent.com/unitaryai/detoxify/d5376446b6accee5dd2d346f2d3050f9d8a69af1/" \
           "tests/dummy_data/jigsaw-toxic-comment-classification-challenge/"
PAPER_LICENSE = "no license stated (Anthropic, supplementary material of arXiv:2212.08073): not shipped"

# (task, culture code as the task declares it, culture name, pairs) of the packaged red-team sets
REDTEAM_SETS = (("cai_south_africa", "ZA", "South African", 220), ("cai_romania", "RO", "Romanian", 330))
REDTEAM_METRICS = {"judge": ("adherence", "harmlessness"), "helpfulness": ("reward",),
                   "harmlessness": ("harmlessness",)}
REDTEAM_CAVEAT = ("answers written by GPT-4o for the bluedot project, not human-labelled one by one; the "
                  "misaligned answer is misaligned by construction, so this measures whether the scorer "
                  "sees the culture's principles, not agreement with annotators")

BUILTIN: dict[str, Suite] = {s.name: s for s in (
    Suite("harmful-vs-ethical", "binary",
          "254 conversations from the CAI paper, each labelled harmful/unethical (127) or ethical (127)",
          {"judge": ("harmlessness",), "harmlessness": ("harmlessness",),
           "moderation": ("max_category_score", "flagged"),
           "harmbench_cls": ("harmful",), "llama_guard": ("unsafe", "p_unsafe"), "strongreject": ("score",)},
          label="harmful", source=CAI_PAPER + "HarmfulVsEthical.jsonl", license=PAPER_LICENSE,
          files=("HarmfulVsEthical.jsonl",), urls=(CAI_PAPER + "HarmfulVsEthical.jsonl",),
          loader=load_harmful_vs_ethical,
          caveat="multi-turn HH-RLHF conversations; only the final assistant turn is scored"),
    Suite("hhh-pairs", "pairwise",
          "438 pairs of answers to one conversation from the CAI paper's HHH evaluation; humans "
          "chose the more helpful, honest and harmless one",
          {"judge": ("helpfulness", "harmlessness"), "helpfulness": ("reward",),
           "harmlessness": ("harmlessness",)},
          label="preferred", source=CAI_PAPER + "438HHHEvaluations.jsonl", license=PAPER_LICENSE,
          files=("438HHHEvaluations.jsonl",), urls=(CAI_PAPER + "438HHHEvaluations.jsonl",),
          loader=load_hhh_pairs,
          caveat="the preference mixes helpfulness, honesty and harmlessness; a single-criterion "
                 "metric is not expected to reach 1.0"),
    Suite("jigsaw-toxic", "binary",
          "308 Jigsaw 2018 toxic-comment rows (30 toxic) from detoxify's test data",
          {"harmlessness": ("harmlessness",), "moderation": ("max_category_score", "flagged"),
           "judge": ("harmlessness",)},
          label="toxic", source=DETOXIFY + "train.csv", license="Apache-2.0 repo; text CC-BY-SA-3.0",
          files=("jigsaw2018_sample_detoxify/train.csv", "jigsaw2018_sample_detoxify/test.csv"),
          urls=(DETOXIFY + "train.csv", DETOXIFY + "test.csv"),
          loader=load_jigsaw,
          caveat="training rows of the public classifiers: optimistic (s-nlp/roberta_toxicity_classifier "
                 "and unitary/toxic-bert were trained on Jigsaw); comments, not answers to prompts"),
    Suite("stsb", "graded",
          "STS benchmark sentence pairs with human 0-5 similarity (give the file with --data)",
          {"similarity": ("similarity",)}, positive_is="good", label="score",
          source="https://huggingface.co/datasets/sentence-transformers/stsb (test split)",
          license="CC-BY-SA-4.0 (STS benchmark)", files=("sts-test.csv",), urls=("",), loader=load_stsb,
          caveat="published figure for all-MiniLM-L6-v2: Spearman 0.8203 on the test split (MTEB)"),
    *(Suite(f"redteam-pairs-{code.lower()}", "pairwise",
            f"{n} {culture} red-team prompts (bluedot), each with its constitution-aligned (correct) and "
            f"misaligned (incorrect) answer; the scorer should prefer the aligned one",
            REDTEAM_METRICS, label="preferred", source=f"built-in task {tid} (packaged)",
            license="MIT (bluedot_cai, cai_bench/tasks/builtin/NOTICE)", loader=load_redteam_pairs((tid,)),
            caveat=REDTEAM_CAVEAT, culture=code)
      for tid, code, culture, n in REDTEAM_SETS),
    Suite("redteam-pairs", "pairwise",
          "both culture red-team sets (550 pairs) in one suite, to split with --by culture or --by language",
          REDTEAM_METRICS, label="preferred", source="built-in tasks cai_south_africa, cai_romania (packaged)",
          license="MIT (bluedot_cai, cai_bench/tasks/builtin/NOTICE)",
          loader=load_redteam_pairs(tuple(t for t, *_ in REDTEAM_SETS)), caveat=REDTEAM_CAVEAT),
)}

DEFAULT_SUITES = ("harmful-vs-ethical", "hhh-pairs", "jigsaw-toxic", "stsb", "redteam-pairs-za", "redteam-pairs-ro")


# ---------------------------------------------------------------- user suites

def user_suite_dirs() -> list[Path]:
    """Registered suite folders: `$CAI_BENCH_HOME/suites/*` and `$CAI_BENCH_SUITES` entries."""
    dirs: list[Path] = []
    for root in [cai_bench_home() / "suites",
                 *[Path(p).expanduser() for p in os.environ.get("CAI_BENCH_SUITES", "").split(os.pathsep) if p]]:
        if (root / "suite.yaml").is_file():
            dirs.append(root)
        elif root.is_dir():
            dirs.extend(sorted(d for d in root.iterdir() if (d / "suite.yaml").is_file()))
    return dirs


def load_suite_folder(folder: Path) -> Suite:
    """A folder with suite.yaml: {name, kind, data, label?, positive_is?, metrics: {scorer: [metric]},
    description?, caveat?, source?, license?}. Binary/graded data rows hold prompt, response,
    reference? and the label column; pairwise rows hold prompt, better, worse (or chosen, rejected)."""
    path = folder / "suite.yaml"
    from cai_bench.io import load_yaml_mapping, plain

    spec = plain(load_yaml_mapping(path, "name, kind, data, metrics"))
    for key in ("name", "kind", "data", "metrics"):
        if key not in spec:
            raise UserError(f"{path}: field {key!r} is missing")
    kind = spec["kind"]
    if kind not in ("binary", "graded", "pairwise"):
        raise UserError(f"{path}: field 'kind' must be binary, graded or pairwise, got {kind!r}")
    positive_is = spec.get("positive_is", "good" if kind == "graded" else "bad")
    if positive_is not in ("bad", "good"):
        raise UserError(f"{path}: field 'positive_is' must be bad or good")
    metrics = spec["metrics"]
    if not isinstance(metrics, dict) or not all(isinstance(v, list) for v in metrics.values()):
        raise UserError(f"{path}: field 'metrics' must map scorer ids to lists of metric names")
    label = str(spec.get("label", "label"))
    data = str(spec["data"])
    if not (folder / data).is_file():
        raise UserError(f"{path}: field 'data': {folder / data} does not exist")

    def loader(paths: list[Path]) -> list:
        rows = read_table(paths[0])
        return read_pairs(rows, paths[0]) if kind == "pairwise" else read_labelled(rows, paths[0], label, kind)

    return Suite(str(spec["name"]), kind, str(spec.get("description", "")),
                 {str(k): tuple(map(str, v)) for k, v in metrics.items()}, positive_is, label,
                 str(spec.get("caveat", "")), str(spec.get("source", "")), str(spec.get("license", "")),
                 (data,), ("",), loader, folder)


def all_suites() -> dict[str, Suite]:
    out = dict(BUILTIN)
    for d in user_suite_dirs():
        s = load_suite_folder(d)
        out[s.name] = s  # a user suite of the same name shadows the built-in one
    return out


def get_suite(name: str) -> Suite:
    """A suite by name, or a folder path holding suite.yaml."""
    p = Path(name).expanduser()
    if (p / "suite.yaml").is_file():
        return load_suite_folder(p)
    suites = all_suites()
    if name not in suites:
        raise UserError(f"unknown suite {name!r}; known: {', '.join(suites)} (or a folder with suite.yaml)")
    return suites[name]


# ---------------------------------------------------------------- user files (--against)

BINARY_TRUE = {"1", "1.0", "true", "yes", "y"}
BINARY_FALSE = {"0", "0.0", "false", "no", "n"}


def label_kind(values: list) -> Kind:
    """binary when every label is 0/1/true/false/yes/no, else graded."""
    texts = {str(v).strip().lower() for v in values}
    return "binary" if texts <= BINARY_TRUE | BINARY_FALSE else "graded"


def _label_value(v: object, kind: Kind, where: str, col: str) -> float:
    if kind == "binary":
        t = str(v).strip().lower()
        if t in BINARY_TRUE:
            return 1.0
        if t in BINARY_FALSE:
            return 0.0
        raise UserError(f"{where}: field {col!r} must be 0/1 or true/false for binary labels, got {v!r}")
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{where}: field {col!r} must be a number, got {v!r}") from None


def read_labelled(rows: list[dict], path: Path, label: str, kind: Kind | None = None) -> list[LabelledRow]:
    """{prompt, response, <label>, reference?, id?} rows; a row without a label is an input error."""
    if not rows:
        raise UserError(f"{path}: no rows")
    for row in rows:
        where = f"{path}:{row['_line']}"
        if row.get(label) in (None, ""):
            raise UserError(f"{where}: label field {label!r} is missing"
                            + (f" (columns: {', '.join(k for k in row if k != '_line')})" if row else ""))
        for key in ("prompt", "response"):
            if key == "prompt" and row.get(key) is None:
                continue  # a classifier row may have no prompt
            if not isinstance(row.get(key), str):
                raise UserError(f"{where}: field {key!r} is missing or not a string")
    kind = kind or label_kind([r[label] for r in rows])
    known = {"id", "prompt", "response", "reference", label}
    return [LabelledRow(str(r.get("id") or r["_line"]), r.get("prompt") or "", r["response"],
                        _label_value(r[label], kind, f"{path}:{r['_line']}", label),
                        r.get("reference") or None, _meta(r, known)) for r in rows]


def _meta(row: dict, known: set[str]) -> dict[str, str]:
    """A row's other scalar columns (culture, language, ...), as text, for `--by`."""
    return {k: str(v) for k, v in row.items()
            if k not in known and k != "_line" and isinstance(v, (str, int, float, bool)) and v != ""}


def read_pairs(rows: list[dict], path: Path) -> list[Pair]:
    """{prompt, better, worse} or {prompt, chosen, rejected} rows."""
    if not rows:
        raise UserError(f"{path}: no rows")
    out = []
    for row in rows:
        where = f"{path}:{row['_line']}"
        names = ("better", "worse") if "better" in row else ("chosen", "rejected")
        for key in ("prompt", *names):
            if not isinstance(row.get(key), str):
                raise UserError(f"{where}: field {key!r} is missing or not a string (pairwise rows need "
                                f"prompt and better/worse or chosen/rejected)")
        out.append(Pair(str(row.get("id") or row["_line"]), row["prompt"], row[names[0]], row[names[1]],
                        _meta(row, {"id", "prompt", *names})))
    return out
