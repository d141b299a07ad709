"""The Python examples of the README and ``docs/*.md``, and how each is marked.

A fenced ```` ```python ```` block is run by the docs tests when the line just above it is
``<!-- offline -->`` (run on its own) or ``<!-- offline continued -->`` (run after the previous
offline block of the same file, in the same namespace). Any other Python block must say what it needs
in the paragraph just above it, on a line that starts with "Needs" (``*Needs a Cohere key...*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "<!-- offline -->"
CONTINUED = "<!-- offline continued -->"
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
_NEEDS = re.compile(r"^[\s>*_-]*needs\b", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    """One fenced Python block: where it is, its code, its marker and the note above it."""

    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    marker: str | None  # OFFLINE, CONTINUED or None
    note: str | None  # the "Needs ..." line above an unmarked block

    @property
    def name(self) -> str:
        """``README.md:29``: the file, relative to the repository, and the fence's line."""
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def documents() -> list[Path]:
    """The README and every ``docs/*.md``."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _paragraph_above(lines: list[str], fence: int) -> list[str]:
    """The text lines of the paragraph just above line ``fence`` (HTML comments skipped)."""
    out: list[str] = []
    for line in reversed(lines[:fence]):
        stripped = line.strip()
        if stripped.startswith("<!--") and stripped.endswith("-->"):
            continue
        if not stripped:
            if out:
                break
            continue
        out.append(stripped)
    return out[::-1]


def python_examples(path: Path) -> list[Example]:
    """Every fenced ``python`` / ``py`` block of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Example] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            i += 1
            continue
        fence, lang = match.group(1), match.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
        if lang in ("python", "py"):
            above = [line.strip() for line in lines[:i] if line.strip()]
            marker = above[-1] if above and above[-1] in (OFFLINE, CONTINUED) else None
            note = next((line.strip() for line in _paragraph_above(lines, i) if _NEEDS.match(line)), None)
            out.append(Example(path, i + 1, "\n".join(lines[i + 1 : end]) + "\n", marker, note))
        i = end + 1
    return out


def all_examples() -> list[Example]:
    """The Python examples of every document."""
    return [example for path in documents() for example in python_examples(path)]


def scripts(examples: list[Example]) -> dict[str, list[Example]]:
    """The runnable groups: each offline block with the ``continued`` blocks after it, by the first's name."""
    groups: dict[str, list[Example]] = {}
    current: list[Example] | None = None
    for example in examples:
        if example.marker == OFFLINE:
            current = groups.setdefault(example.name, [example])
        elif example.marker == CONTINUED:
            if current is None or current[0].path != example.path:
                raise ValueError(f"{example.name}: '{CONTINUED}' with no offline block before it in the file")
            current.append(example)
    return groups
