"""A checkpoint's fingerprint changes with every file that changes its behaviour,
tokenizer files included, and with nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_bench.models.fingerprint import fingerprint_dir


def _ckpt(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    for name in ("tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt", "vocab.txt"):
        (folder / name).write_text(f"{name} v1")
    (folder / "README.md").write_text("notes")
    return folder


@pytest.mark.parametrize("name", ["tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt",
                                  "vocab.txt"])
def test_tokenizer_files_change_the_fingerprint(tmp_path: Path, name: str) -> None:
    folder = _ckpt(tmp_path / "ck")
    before = fingerprint_dir(folder)
    (folder / name).write_text(f"{name} version 2")
    assert fingerprint_dir(folder) != before


def test_other_files_do_not(tmp_path: Path) -> None:
    folder = _ckpt(tmp_path / "ck")
    before = fingerprint_dir(folder)
    (folder / "README.md").write_text("other notes")
    (folder / "trainer_state.json").write_text("{}")
    assert fingerprint_dir(folder) == before
