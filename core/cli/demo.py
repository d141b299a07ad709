"""The quickstart demo: rerank a small candidate list offline with the embedded model."""

from __future__ import annotations

from typing import Any

from core.registry import create_reranker
from core.results import RerankedDocuments

DEMO_QUERY = "How do plants turn sunlight into energy?"

#: First-stage candidates in the order a keyword retriever might return them.
DEMO_DOCUMENTS: list[dict[str, Any]] = [
    {"id": "d1", "text": "Solar panels convert sunlight into electricity using photovoltaic cells."},
    {"id": "d2", "text": "The energy drink market grew by twelve percent last year."},
    {"id": "d3", "text": "Photosynthesis lets plants use light energy to make glucose from water and CO2."},
    {"id": "d4", "text": "Houseplants need indirect sunlight and weekly watering to thrive."},
    {
        "id": "d5",
        "text": "Chlorophyll in leaves absorbs light, powering the reactions that store energy as sugar.",
    },
    {"id": "d6", "text": "The plant manager said the factory will switch to renewable energy."},
]

DEMO_SPEC: dict[str, Any] = {"provider": "sentence_transformer", "config": {"model": "embedded"}}


def run_demo(spec: dict[str, Any] | None = None, top_k: int | None = None) -> RerankedDocuments:
    """Rerank the demo candidates and return the reranked dicts (with the call's ``ranking``)."""
    reranker = create_reranker(spec or DEMO_SPEC)
    return reranker.rerank(DEMO_QUERY, DEMO_DOCUMENTS, top_k=top_k)


def format_table(rows: list[dict[str, Any]], text_width: int = 78) -> str:
    """A plain-text table of reranked rows."""
    lines = [f"{'rank':>4}  {'id':<4} {'score':>6}  text", "-" * (text_width + 20)]
    for rank, row in enumerate(rows, 1):
        score = row.get("rerank_score")
        shown = "  n/a " if score is None else f"{score:6.3f}"
        text = str(row.get("text", ""))[:text_width]
        lines.append(f"{rank:>4}  {row.get('id', ''):<4} {shown}  {text}")
    return "\n".join(lines)
