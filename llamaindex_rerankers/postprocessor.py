"""``RerankPostprocessor``: a LlamaIndex node postprocessor over any core reranker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base import EventContext
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from core.base import ERROR_KEY, BaseReranker
from core.errors import InvalidInputError
from core.keywords import reranker_from_keywords
from core.registry import create_reranker, reranker_spec
from core.results import Ranking
from core.specs import Spec

dispatcher = get_dispatcher(__name__)

#: Metadata key holding the first-stage score when ``keep_retrieval_score`` is on (LlamaIndex's name).
RETRIEVAL_SCORE_KEY = "retrieval_score"


class RerankPostprocessor(BaseNodePostprocessor):
    """Reorders retrieved nodes with a rerank-layer reranker and keeps the best ``top_n``.

    Build it like llama-index's rerankers, with flat keywords
    (``RerankPostprocessor(provider="sentence_transformer", model="embedded", top_n=2, device="cpu")``,
    ``RerankPostprocessor(model="cohere:rerank-v3.5", api_key=..., top_n=2)``, any config field as a
    keyword; see :mod:`core.keywords`), with a spec or a reranker as first argument, or ``from_config``.
    With no reranker given it is the embedded model.

    Returns new ``NodeWithScore`` objects scored by the reranker. A node the reranker left unscored in
    a successful ranking (one a cascade eliminated) gets score None, never its first-stage score,
    which sits on another scale (a later cutoff would rank it first). When the provider fails and
    the reranker is fail-open, the first-stage order and scores are kept and each node's metadata gets
    ``rerank_error``. Keys this class adds to metadata are hidden from the embed and LLM text.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    top_n: int | None = Field(default=2, ge=0, description="Keep at most this many nodes; None: all.")
    keep_retrieval_score: bool = Field(
        default=False, description="Copy the first-stage score to metadata['retrieval_score']."
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which metadata goes into the text the reranker reads."
    )
    _reranker: BaseReranker = PrivateAttr()

    def __init__(
        self,
        reranker: BaseReranker | Spec | None = None,
        *,
        top_n: int | None = 2,
        keep_retrieval_score: bool = False,
        metadata_mode: MetadataMode = MetadataMode.EMBED,
        callback_manager: CallbackManager | None = None,
        provider: str | None = None,
        model: str | None = None,
        **settings: Any,
    ) -> None:
        built = reranker_from_keywords(
            reranker,
            provider=provider,
            model=model,
            owner=type(self).__name__,
            owner_fields=["top_n", "keep_retrieval_score", "metadata_mode", "callback_manager"],
            **settings,
        )
        fields: dict[str, Any] = {
            "top_n": top_n,
            "keep_retrieval_score": keep_retrieval_score,
            "metadata_mode": metadata_mode,
        }
        if callback_manager is not None:
            fields["callback_manager"] = callback_manager
        super().__init__(**fields)
        self._reranker = built

    @classmethod
    def from_config(cls, spec: dict[str, Any], **kwargs: Any) -> RerankPostprocessor:
        """Build from the core's config dict, e.g. ``{"provider": "cohere", "config": {...}}``."""
        return cls(create_reranker(spec), **kwargs)

    @classmethod
    def class_name(cls) -> str:
        """Stable name used in LlamaIndex serialisation."""
        return "RerankPostprocessor"

    @property
    def reranker(self) -> BaseReranker:
        """The core reranker doing the scoring."""
        return self._reranker

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """Fields plus the reranker's spec; API keys masked (``from_dict`` then reads them from env vars)."""
        data = super().to_dict(**kwargs)
        data["reranker"] = reranker_spec(self._reranker)
        return data

    # --- postprocessing ----------------------------------------------------------------------
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query_of(query_bundle)
        if not nodes:
            return []
        with self._start(nodes, query_bundle, query) as event:
            ranking = self._reranker.rank(query, self._texts(nodes), top_k=self.top_n)
            return self._finish(event, nodes, ranking)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query_of(query_bundle)
        if not nodes:
            return []
        with self._start(nodes, query_bundle, query) as event:
            ranking = await self._reranker.arank(query, self._texts(nodes), top_k=self.top_n)
            return self._finish(event, nodes, ranking)

    def _texts(self, nodes: Sequence[NodeWithScore]) -> list[str]:
        return [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None, query: str) -> Any:
        """Emit ReRankStartEvent; return the legacy RERANKING callback event's context manager."""
        top_n = len(nodes) if self.top_n is None else self.top_n
        model = self._reranker.model_name
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=model))
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: model,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: top_n,
        }
        return self.callback_manager.event(CBEventType.RERANKING, payload=payload)

    def _finish(
        self, event: EventContext, nodes: list[NodeWithScore], ranking: Ranking
    ) -> list[NodeWithScore]:
        reranked = ranked_nodes(nodes, ranking, keep_retrieval_score=self.keep_retrieval_score)
        event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked


def _query_of(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise InvalidInputError("query_bundle is required: pass query_bundle or query_str")
    return query_bundle.query_str


def ranked_nodes(
    nodes: Sequence[NodeWithScore], ranking: Ranking, *, keep_retrieval_score: bool = False
) -> list[NodeWithScore]:
    """New ``NodeWithScore`` objects in ranking order, on copies of the input nodes.

    The score is the rerank score; None for a node the reranker left unscored (a cascade eliminated
    it: its first-stage score is on another scale); the first-stage score where the provider failed
    (fail-open). ``keep_retrieval_score`` keeps the first-stage score in ``metadata["retrieval_score"]``.
    """
    out = []
    for item in ranking.items:
        original = nodes[item.index]
        added: dict[str, Any] = {}
        if keep_retrieval_score:
            added[RETRIEVAL_SCORE_KEY] = original.score
        error = ranking.error or item.flag
        if error is not None:
            added[ERROR_KEY] = error
        score = original.score if ranking.failed else item.score
        out.append(NodeWithScore(node=_copy_with(original.node, added), score=score))
    return out


def _copy_with(node: BaseNode, added: dict[str, Any]) -> BaseNode:
    """A copy of ``node`` with ``added`` metadata (hidden from embed and LLM text), stale errors dropped."""
    metadata = {k: v for k, v in node.metadata.items() if k != ERROR_KEY}
    metadata.update(added)
    hidden = [k for k in added if k not in node.excluded_llm_metadata_keys]
    hidden_embed = [k for k in added if k not in node.excluded_embed_metadata_keys]
    return node.model_copy(
        update={
            "metadata": metadata,
            "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *hidden],
            "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *hidden_embed],
        }
    )
