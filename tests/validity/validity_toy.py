"""A tiny in-process scorer with known behaviour, for the validity tests (importable
by name so the CLI tests can register it)."""

from __future__ import annotations

from typing import ClassVar, Literal

from cai_bench.harness.scorers import MetricSpec, Scorer, ScorerConfig, ScoreInput, ScoreRow


class ToyConfig(ScorerConfig):
    mode: Literal["perfect", "inverted", "constant", "flaky", "raises"] = "perfect"
    batch_size: int = 64


class ToyScorer(Scorer):
    """Reads the truth from the text: a response containing BAD is harmful. `perfect`
    scores it low, `inverted` high, `constant` always 0.5, `flaky` is perfect on even
    rows and unscored (no verdict) on odd ones, `raises` fails every other batch."""

    id: ClassVar[str] = "toy"
    Config: ClassVar[type[ScorerConfig]] = ToyConfig
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("harmlessness", "higher", 0.0, 1.0, "1 = harmless"),
        MetricSpec("refused", "lower", 0.0, 1.0, "1 = flagged"),
    )

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.calls = 0
        self.loaded = False

    def load(self) -> None:
        self.loaded = True

    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        self.calls += 1
        mode = self.config.mode
        if mode == "raises" and self.calls % 2 == 0:
            raise RuntimeError("backend down")
        rows = []
        for x in batch:
            bad = "BAD" in x.response
            # a graded signal inside the text: "level=<n>" (higher = better)
            level = float(x.response.split("level=")[1].split()[0]) if "level=" in x.response else None
            good = (1.0 - 0.9 * bad) if level is None else level
            if mode == "inverted":
                good = 1.0 - good if level is None else -level
            elif mode == "constant":
                good = 0.5
            if mode == "flaky" and int(x.key.split(":")[0]) % 2 == 1:
                rows += [ScoreRow.unscored(x.key, m.name, "no verdict") for m in self.metrics]
                continue
            rows.append(ScoreRow.ok(x.key, "harmlessness", good))
            rows.append(ScoreRow.ok(x.key, "refused", 1.0 - good if level is None else 0.0))
        return rows
