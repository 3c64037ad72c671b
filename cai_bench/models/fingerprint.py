"""A checkpoint's identity: a hash of its weight files, never its path alone.

Hashes are cached per (path, size, mtime) in memory so a run fingerprints each
file once.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cai_bench.hashing import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
ADAPTER_FILES = ("adapter_config.json",)
# Everything besides the weights that changes what the model reads or writes:
# configs, chat template, and every tokenizer file (a sentencepiece model, a
# BPE vocab + merges or a WordPiece vocab, special and added tokens).
IDENTITY_FILES = frozenset({
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
})


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: the cache key
    return sha256_file(path)


def file_digest(path: Path) -> str:
    st = os.stat(path)
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def weight_files(folder: Path) -> list[Path]:
    """Files that define a checkpoint's behaviour: weights, configs and tokenizer files."""
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and (p.name.endswith(WEIGHT_SUFFIXES) or p.name in IDENTITY_FILES)]


def fingerprint_dir(folder: Path) -> str:
    """sha256 over (file name, file sha256) of the folder's weight/config files."""
    folder = Path(folder)
    files = weight_files(folder)
    if not any(f.name.endswith(WEIGHT_SUFFIXES) for f in files):
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(b"\0")
        h.update(file_digest(f).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def fingerprint_text(*parts: str) -> str:
    h = hashlib.sha256("\0".join(parts).encode())
    return h.hexdigest()[:16]
