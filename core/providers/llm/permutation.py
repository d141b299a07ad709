"""Reading a listwise answer: a permutation of a window's ids (``"[2] > [3] > [1]"``), repaired."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.providers.llm.parsing import answer_text

_BRACKETED = re.compile(r"\[\s*(\d{1,9})\s*\]")
_BARE = re.compile(r"(?<![\w.])(\d{1,9})(?![\w]|\.\d)")


@dataclass(frozen=True)
class Permutation:
    """A parsed window ranking: ``order`` is always a full permutation of ``range(n)``.

    ``found`` counts the distinct valid ids the answer named (0: nothing usable, the
    window keeps its order); ``missing`` are the positions the model left out, appended
    in their previous relative order; ``problems`` says what was repaired.
    """

    order: list[int]
    found: int
    missing: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_permutation(answer: object, n: int) -> Permutation:
    """Read a ranking of ``n`` items (ids 1..n) from ``answer``, e.g. ``"[2] > [3] > [1]"``.

    Bracketed ids are used when present, else bare integers (``2, 3, 1``). Prose around
    them is ignored; out-of-range and repeated ids are dropped (the first mention wins);
    ids never named keep their relative order after the named ones. An answer longer than
    ``MAX_ANSWER_CHARS`` (reasoning removed) is not read.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    text, too_long = answer_text(answer) if isinstance(answer, str) else ("", None)
    raw = _BRACKETED.findall(text) or _BARE.findall(text)
    order: list[int] = []
    seen: set[int] = set()
    out_of_range: list[int] = []
    repeated: list[int] = []
    for token in raw:
        ident = int(token)
        if not 1 <= ident <= n:
            out_of_range.append(ident)
        elif ident - 1 in seen:
            repeated.append(ident)
        else:
            seen.add(ident - 1)
            order.append(ident - 1)
    missing = [i for i in range(n) if i not in seen]
    problems = []
    if too_long is not None:
        problems.append(too_long)
    elif not isinstance(answer, str) or not answer.strip():
        problems.append("empty answer")
    elif not order and n:
        problems.append("no valid ids in answer")
    if out_of_range:
        problems.append(f"out-of-range ids {out_of_range[:10]}")
    if repeated:
        problems.append(f"repeated ids {repeated[:10]}")
    if missing and order:
        problems.append(f"missing ids {[i + 1 for i in missing][:20]}")
    return Permutation(order + missing, len(order), missing, problems)
