"""Row shapes of a batch table: validation per row, grouping into scoring tasks, output rows.

A table holds rows of one shape:

- grouped: one row per query, ``query`` and ``documents`` (strings or dicts), optional ``doc_ids``
  aligned with the documents and optional ``query_id``;
- flat: one row per (query, document) pair, ``query_id``, ``query``, ``text`` and usually ``doc_id``.

Every other column is carried through untouched. A row that cannot be scored (missing query, empty
documents, a text that is not a string...) is kept and its ``rerank_error`` names the field.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.base import ERROR_KEY, RAW_SCORE_KEY, SCORE_KEY
from core.errors import InvalidInputError
from core.results import Ranking
from core.text import extract_texts, validate_documents, validate_query

Shape = Literal["grouped", "flat"]
SHAPES: tuple[Shape, ...] = ("grouped", "flat")

#: The column ``rank`` adds: 1 for the best document of its query.
RANK_KEY = "rank"
#: Columns every output row gets.
OUTPUT_KEYS = (SCORE_KEY, RAW_SCORE_KEY, RANK_KEY, ERROR_KEY)
#: Flag of a document the reranker's ``score_threshold`` left out: kept here, after the others.
NOT_KEPT = "not kept: below the reranker's score_threshold"


@dataclass(frozen=True)
class Task:
    """One reranker call: a query and its candidate texts in first-stage order."""

    query: str
    texts: list[str]


@dataclass
class Outcome:
    """What one task gave: input positions best first, with their scores and per-document errors.

    Every position appears once (nothing is dropped); ``error`` is set when the reranker failed
    and the first-stage order was kept.
    """

    order: list[int]
    scores: list[float | None]
    raw_scores: list[float | None]
    errors: list[str | None]
    error: str | None = None


@dataclass
class Unit:
    """The rows of one query: a grouped row, or a flat query's pair rows, and its task if any."""

    rows: list[int]
    task: Task | None = None
    error: str | None = None
    bad: list[tuple[int, str]] = field(default_factory=list)
    #: A flat row with no usable query_id: in no query, so without a rank.
    loose: bool = False

    @property
    def pairs(self) -> int:
        """Pairs this unit sends to the reranker."""
        return len(self.task.texts) if self.task is not None else 0


@dataclass
class Plan:
    """A table's rows grouped into units, in output order."""

    shape: Shape
    units: list[Unit]

    @property
    def pairs(self) -> int:
        """Pairs sent to the reranker in all."""
        return sum(unit.pairs for unit in self.units)


def detect_shape(rows: Sequence[object]) -> Shape:
    """``grouped`` if the first object row has ``documents``, ``flat`` if it has ``text``, else an error."""
    for row in rows:
        if isinstance(row, Mapping):
            if "documents" in row:
                return "grouped"
            if "text" in row:
                return "flat"
            raise InvalidInputError(
                "cannot tell the rows' shape: a row needs 'documents' (grouped: query, documents) or "
                f"'text' (flat: query_id, doc_id, query, text); the first row has {sorted(map(str, row))}"
            )
    raise InvalidInputError("no row is an object: expected grouped or flat rows")


def check_shape(shape: Shape | None, rows: Sequence[object]) -> Shape:
    """``shape`` if it is one of SHAPES, the detected one if None, else an error naming the choices."""
    if shape is None:
        return detect_shape(rows)
    if shape not in SHAPES:
        raise InvalidInputError(f"shape must be one of {SHAPES} or None, got {shape!r}")
    return shape


def plan_rows(rows: Sequence[object], shape: Shape, text_key: str | None = None) -> Plan:
    """Validate each row and group rows into units, one per query (grouped: one per row)."""
    if shape == "grouped":
        return Plan(shape, [_grouped_unit(i, row, text_key) for i, row in enumerate(rows)])
    return Plan(shape, _flat_units(rows))


def _grouped_unit(index: int, row: object, text_key: str | None) -> Unit:
    if not isinstance(row, Mapping):
        return Unit([index], error=f"row must be an object, got {type(row).__name__}")
    try:
        if "query" not in row:
            raise InvalidInputError("query is missing")
        query = validate_query(row["query"])
        if "documents" not in row:
            raise InvalidInputError("documents is missing")
        documents = validate_documents(row["documents"])
        if not documents:
            raise InvalidInputError("documents must not be empty")
        texts = extract_texts(documents, text_key)
        ids = row.get("doc_ids")
        if ids is not None and (not isinstance(ids, (list, tuple)) or len(ids) != len(documents)):
            raise InvalidInputError("doc_ids must be a list as long as documents")
    except InvalidInputError as exc:
        return Unit([index], error=str(exc))
    return Unit([index], task=Task(query, texts))


def _query_id(row: Mapping[str, Any]) -> Hashable:
    value = row.get("query_id")
    if value is None:
        raise InvalidInputError("query_id is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInputError(f"query_id must be a string or an integer, got {type(value).__name__}")
    return value


def _flat_units(rows: Sequence[object]) -> list[Unit]:
    groups: dict[Hashable, tuple[Unit, str | None, list[str]]] = {}
    loose: list[Unit] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            loose.append(Unit([], bad=[(i, f"row must be an object, got {type(row).__name__}")], loose=True))
            continue
        try:
            qid = _query_id(row)
        except InvalidInputError as exc:
            loose.append(Unit([], bad=[(i, str(exc))], loose=True))
            continue
        unit, query, texts = groups.setdefault(qid, (Unit([]), None, []))
        try:
            row_query = validate_query(row["query"]) if "query" in row else None
            if row_query is None:
                raise InvalidInputError("query is missing")
            if query is not None and row_query != query:
                raise InvalidInputError(f"query differs from the first row of query_id {qid!r}")
            text = row.get("text")
            if not isinstance(text, str):
                raise InvalidInputError(
                    "text is missing" if text is None else f"text must be a string, got {type(text).__name__}"
                )
        except InvalidInputError as exc:
            unit.bad.append((i, str(exc)))
            continue
        groups[qid] = (unit, row_query, texts)
        unit.rows.append(i)
        texts.append(text)
    units = []
    for unit, query, texts in groups.values():
        if query is not None:
            unit.task = Task(query, texts)
        units.append(unit)
    return units + loose


def outcome_of(ranking: Ranking, n: int) -> Outcome:
    """The outcome of a ``rank`` call on ``n`` texts; positions it left out come last, flagged."""
    order = [item.index for item in ranking.items]
    scores = [item.score for item in ranking.items]
    raw = [item.raw_score for item in ranking.items]
    errors = [ranking.error or item.flag for item in ranking.items]
    kept = set(order)
    for i in range(n):
        if i not in kept:
            order.append(i)
            scores.append(None)
            raw.append(None)
            errors.append(ranking.error or NOT_KEPT)
    return Outcome(order, scores, raw, errors, ranking.error)


def compose(rows: Sequence[Any], unit: Unit, outcome: Outcome | None, shape: Shape) -> list[dict[str, Any]]:
    """The output rows of one unit: copies of its rows with the four output columns."""
    if shape == "grouped":
        return [_grouped_output(rows[unit.rows[0]], unit, outcome)]
    out: list[dict[str, Any]] = []
    if outcome is not None:
        for rank, (position, score, raw, error) in enumerate(
            zip(outcome.order, outcome.scores, outcome.raw_scores, outcome.errors, strict=True), 1
        ):
            out.append(_with(rows[unit.rows[position]], score, raw, rank, error))
    for index, error in unit.bad:  # the bad rows of a query follow its scored ones
        row = rows[index]
        copy = dict(row) if isinstance(row, Mapping) else {"row": row}
        out.append(_with(copy, None, None, None if unit.loose else len(out) + 1, error))
    return out


def _with(
    row: Mapping[str, Any], score: float | None, raw: float | None, rank: int | None, error: str | None
) -> dict[str, Any]:
    out = dict(row)
    out[SCORE_KEY] = score
    out[RAW_SCORE_KEY] = raw
    out[RANK_KEY] = rank
    out[ERROR_KEY] = error
    return out


def _grouped_output(row: object, unit: Unit, outcome: Outcome | None) -> dict[str, Any]:
    out: dict[str, Any] = dict(row) if isinstance(row, Mapping) else {"row": row}
    documents = out.get("documents")
    n = len(documents) if isinstance(documents, (list, tuple)) else 0
    if outcome is None:
        out[SCORE_KEY] = [None] * n
        out[RAW_SCORE_KEY] = [None] * n
        out[RANK_KEY] = list(range(1, n + 1))
        out[ERROR_KEY] = unit.error
        return out
    assert isinstance(documents, (list, tuple))
    out["documents"] = [documents[i] for i in outcome.order]
    ids = out.get("doc_ids")
    if isinstance(ids, (list, tuple)):
        out["doc_ids"] = [ids[i] for i in outcome.order]
    out[SCORE_KEY] = list(outcome.scores)
    out[RAW_SCORE_KEY] = list(outcome.raw_scores)
    out[RANK_KEY] = list(range(1, n + 1))
    out[ERROR_KEY] = outcome.error
    return out
