"""File names and anchors for groups in a report folder."""

from __future__ import annotations

import hashlib
import re
import unicodedata


def slug(text: str) -> str:
    """A file name and HTML anchor for a culture/group name: a readable part
    (letters and digits of any script, other runs as `_`, at most 40 characters)
    plus 8 hex digits of the name's SHA-256, so names that read alike
    ("South Africa", "South_Africa", "za", "ZA") still get different files on
    any file system, and the same name always gets the same file."""
    name = str(text)
    readable = re.sub(r"[^\w.-]+|_+", "_", unicodedata.normalize("NFKC", name)).strip("._-")[:40].rstrip("._-")
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable or 'group'}-{digest}"
