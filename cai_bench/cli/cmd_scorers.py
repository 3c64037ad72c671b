"""`cai-bench scorers`: list the registered scorers with their metrics, validate
scorers against human labels, list validation suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.markup import escape

from cai_bench.cli._app import app
from cai_bench.cli._options import LIST_FORMAT, SCORER_CONFIG, STORE, THREADS, ListFormat, use_threads

scorers_app = typer.Typer(help="Scorers: list them with their metrics; validate them against human labels; "
                          "list validation suites.", no_args_is_help=True)
app.add_typer(scorers_app, name="scorers")


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "unbounded"
    return f"{'-inf' if lo is None else f'{lo:g}'} .. {'inf' if hi is None else f'{hi:g}'}"


@scorers_app.command("list")
def list_cmd(fmt: ListFormat = LIST_FORMAT) -> None:
    """List every registered scorer (built-in, `@scorer`-decorated, or from the `cai_bench.scorers` entry-point
    group) with its metrics: direction, range, whether it enters the composite, and its role."""
    from cai_bench.console import Col, fitted_table, print_records, print_table
    from cai_bench.harness.scorers import scorer_class, scorer_ids, source_of

    records: list[dict[str, Any]] = []
    for sid in scorer_ids():
        try:
            cls = scorer_class(sid)
        except ImportError as exc:
            records.append(dict(scorer=sid, metric=None, direction=None, lo=None, hi=None, composite=None, role=None,
                                description=f"cannot import: {exc}", source=source_of(sid)))
            continue
        records += [dict(scorer=sid, metric=m.name, direction=m.direction, lo=m.lo, hi=m.hi, composite=m.composite,
                         role=m.role, description=m.description, source=source_of(sid)) for m in cls.metrics]
    if fmt is not ListFormat.table:
        print_records(records, fmt.value)
        return
    # at 80 columns: scorer, metric, direction, description; wider terminals get the rest back
    cols = [Col("scorer", keep=True), Col("metric", keep=True), Col("direction", keep=True),
            Col("range", min_text=9, drop=2), Col("composite", keep=True, drop=4), Col("role", keep=True, drop=3),
            Col("description", min_text=20), Col("from", drop=1)]
    rows = [[r["scorer"], r["metric"] or "", r["direction"] or "",
             "" if r["metric"] is None else _range(r["lo"], r["hi"]),
             "" if r["composite"] is None else "yes" if r["composite"] else "no", r["role"] or "", r["description"],
             r["source"]] for r in records]
    print_table(fitted_table(cols, rows, title="Scorers"))


def _settings(scorer_ids: list[str], config: Path | None, sets: list[str]) -> dict[str, dict[str, Any]]:
    """Scorer settings from --scorer-config FILE ({setting: value} for one scorer, or
    {scorer: {setting: value}}) and --scorer-set [SCORER.]KEY=VALUE (values parsed as YAML)."""
    from cai_bench.errors import UserError
    from cai_bench.harness.config import read_scorer_config
    from cai_bench.io import parse_assignment

    out: dict[str, dict[str, Any]] = {s: {} for s in scorer_ids}
    if config is not None:
        out = read_scorer_config(config, scorer_ids)
    for item in sets:
        key, value = parse_assignment(item, "--scorer-set", form="[SCORER.]KEY=VALUE")
        sid, dot, name = key.partition(".")
        if not dot:
            if len(scorer_ids) != 1:
                raise UserError(f"--scorer-set {item!r}: name the scorer (SCORER.KEY=VALUE) when validating several")
            sid, name = scorer_ids[0], key
        if sid not in out:
            raise UserError(f"--scorer-set {item!r}: scorer {sid!r} is not being validated")
        out[sid][name] = value
    return out


@scorers_app.command("validate")
def validate_cmd(
    scorer: str = typer.Argument(..., help="Scorer id, or 'all'."),
    against: Optional[Path] = typer.Option(None, "--against", help="Your labelled file (.jsonl/.csv/.tsv): "
                                           "rows {prompt, response, <label>, reference?}, or pairs "
                                           "{prompt, chosen, rejected}."),
    label: Optional[str] = typer.Option(None, "--label", help="The label column of --against."),
    suite: List[str] = typer.Option([], "--suite", help="Built-in or registered suite, a suite folder, or "
                                    "'default'; repeatable. See `cai-bench scorers suites`."),
    metric: List[str] = typer.Option([], "--metric", "-m", help="Metric to validate; repeatable (default: the "
                                     "suite's metrics for the scorer; every metric for --against)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Local copy of the suites' files (a file or a "
                                        "folder searched by file name), e.g. ../shared/data."),
    kind: Optional[str] = typer.Option(None, "--kind", help="binary | graded | pairwise (default: from the labels)."),
    positive_is: Optional[str] = typer.Option(None, "--positive-is", help="What label 1 (or a high grade) "
                                              "means: bad (harmful, toxic, refused; binary default) or good "
                                              "(graded default)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Decision threshold in metric units "
                                              "(default: the middle of the metric's declared range)."),
    scorer_config: Optional[Path] = SCORER_CONFIG,
    scorer_set: List[str] = typer.Option([], "--scorer-set", help="[SCORER.]KEY=VALUE scorer setting; repeatable."),
    sample: Optional[str] = typer.Option(None, "--sample", metavar="N|all",
                                         help="A seeded random sample of N rows (or pairs) per suite, or all of "
                                              "them, so that a slow judge finishes. (default: 40 per suite; all "
                                              "of an --against file)"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Same as --sample N."),
    by: Optional[str] = typer.Option(None, "--by", help="Split each suite by a column and validate each part "
                                     "on its own: culture or language (e.g. --suite redteam-pairs --by "
                                     "culture); a culture's validation flags that culture's leaderboard cells."),
    seed: int = typer.Option(0, "--seed", help="Seed for --sample and the bootstrap."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder whose store gets the results "
                                       "(default: ./cai-bench-out)."),
    store: Optional[str] = STORE,
    no_store: bool = typer.Option(False, "--no-store", help="Print only; store nothing."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every figure to this JSON file."),
    fresh: bool = typer.Option(False, "--fresh", help="Score every answer again (default: answers this scorer "
                               "config already scored in an earlier, maybe interrupted, validation are reused)."),
    threads: Optional[int] = THREADS,
) -> None:
    """Measure how far a scorer agrees with human labels: AUC, accuracy, kappa and the confusion matrix for
    binary labels; Spearman and Pearson for graded ones; pairwise accuracy for answer pairs; each with a
    seeded bootstrap 95% CI, and valid / unscored / error counts.

    The results go to the store, keyed by the scorer's config hash; reports and `run` show them next to
    every score of the same scorer config."""
    from cai_bench.console import console, err_console, make_progress, print_table
    from cai_bench.errors import UserError
    from cai_bench.harness.scorers import scorer_ids
    from cai_bench.harness.config import ScorerEntry
    from cai_bench.harness.scoring import prepare_scorers
    from cai_bench.results import normalize_url, redact_url
    from cai_bench.validity import session

    use_threads(threads)
    from cai_bench.validity import store as vstore
    from cai_bench.validity.display import validation_table

    if kind not in (None, "binary", "graded", "pairwise"):
        raise UserError(f"--kind {kind!r}: expected binary, graded or pairwise")
    if positive_is not in (None, "bad", "good"):
        raise UserError(f"--positive-is {positive_is!r}: expected bad or good")
    if against is None and not suite:
        raise UserError("give --against FILE --label COLUMN, or --suite NAME (see `cai-bench scorers suites`)")
    if against is not None and suite:
        raise UserError("give either --against or --suite, not both")
    if sample is not None and limit is not None:
        raise UserError("give --sample or --limit, not both")
    if by is not None and by not in session.SPLIT_COLUMNS:
        raise UserError(f"--by {by!r}: expected {' or '.join(session.SPLIT_COLUMNS)}")
    if limit is not None:
        sample = str(limit)
    size = session.parse_sample(sample) if (sample is not None or against is None) else None
    known = scorer_ids()
    ids = list(known) if scorer == "all" else [scorer]
    if scorer != "all" and scorer not in known:
        raise UserError(f"unknown scorer {scorer!r}; known: {', '.join(known)} (or 'all')")
    settings = _settings(ids, scorer_config, list(scorer_set))

    if against is not None:
        targets, skipped = [session.against_target(against, label, kind, positive_is)], []  # type: ignore[arg-type]
    else:
        targets, skipped = session.suite_targets(suite, data)
        if positive_is:
            for t in targets:
                t.positive_is = positive_is
    if by is not None:
        targets = session.split_targets(targets, by)
    prepared = prepare_scorers([ScorerEntry(id=s, settings=settings[s]) for s in ids])
    ready = []
    for sc, st in prepared:
        if sc is None:
            skipped.append(session.Skipped(st.id, "*", f"unavailable: {st.reason}"))
        else:
            ready.append(sc)
    if scorer != "all" and not ready:
        raise UserError(f"scorer {scorer!r} is unavailable: {prepared[0][1].reason}", exit_code=1)
    with make_progress(transient=True) as progress:
        outcome = session.run_session(ready, targets, metrics=metric, threshold=threshold, seed=seed, limit=size,
                                      explicit=against is not None, progress=progress, resume=not fresh)
    skipped += outcome.skipped
    if outcome.validations:
        print_table(validation_table(outcome.validations))
        for v in outcome.validations:
            a = v.agreement
            console.print(v.summary(), highlight=False, markup=False)
            if a.confusion:
                c = a.confusion
                console.print(f"  confusion at threshold {a.threshold:g} "
                              f"(positive = label 1): tp {c['tp']}, fp {c['fp']}, tn {c['tn']}, fn {c['fn']}",
                              highlight=False, markup=False)
            for note in a.notes:
                console.print(f"  note: {note}", highlight=False, markup=False)
        for caveat in dict.fromkeys(f"{v.suite}: {v.caveat}" for v in outcome.validations if v.caveat):
            console.print(f"caveat: {caveat}", highlight=False, markup=False)
    for s in skipped:
        who = "every scorer" if s.scorer == "*" else s.scorer
        where = "" if s.suite == "*" else f" on {s.suite}"
        err_console.print(f"[yellow]skipped[/yellow] {escape(who + where)}: {escape(s.reason)}", highlight=False,
                          soft_wrap=True)  # one line per skip, whatever the terminal width
    if not outcome.validations:
        raise UserError("nothing was validated (see the reasons above)", exit_code=1)
    if json_out is not None:
        from cai_bench.paths import atomic_write_text

        atomic_write_text(json_out, json.dumps([dict(scorer_id=v.scorer_id, config_hash=v.config_hash,
                                                     metric=v.metric, suite=v.suite, created_at=v.created_at,
                                                     seconds=v.seconds, seed=v.seed, caveat=v.caveat,
                                                     config=v.config, agreement=v.agreement.to_dict())
                                                for v in outcome.validations], indent=2, default=str))
    if not no_store:
        url = normalize_url(store, str(out) if out else None)
        n = vstore.save(url, outcome.validations)
        err_console.print(f"stored {n} validation(s) in {redact_url(url)}", highlight=False)
    for v in outcome.validations:
        if v.agreement.verdict in ("chance", "inverted"):
            err_console.print(f"[bold yellow]warning:[/bold yellow] {escape(v.summary())}", highlight=False)


@scorers_app.command("suites")
def suites_cmd() -> None:
    """List the validation suites: built-in ones and the folders registered under $CAI_BENCH_HOME/suites
    or $CAI_BENCH_SUITES."""
    from cai_bench.console import Col, fitted_table, print_table
    from cai_bench.validity.suites import all_suites

    rows = []
    for s in all_suites().values():
        validates = ", ".join(f"{sid}.{m}" for sid, ms in s.metrics.items() for m in ms)
        where = str(s.folder) if s.folder else (s.source or "--data PATH")
        rows.append([s.name, s.kind, validates, where, s.caveat])
    cols = [Col("suite", keep=True), Col("kind", keep=True), Col("validates"), Col("data", drop=2), Col("caveat", drop=1)]
    print_table(fitted_table(cols, rows, title="Validation suites"))
