"""``RerankCompressor``: a LangChain document compressor and Runnable over any core reranker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator
from typing_extensions import TypedDict

from core.base import ERROR_KEY, BaseReranker
from core.errors import ConfigError, InvalidInputError
from core.keywords import reranker_from_keywords
from core.registry import create_reranker, reranker_spec
from core.results import Ranking
from core.text import validate_documents

#: Metadata key holding the rerank score (LangChain's convention).
RELEVANCE_SCORE_KEY = "relevance_score"


class RerankInput(TypedDict):
    """What the compressor takes as a Runnable: the query and the retrieved documents."""

    query: str
    documents: Sequence[Document]


class RerankCompressor(BaseDocumentCompressor, RunnableSerializable[RerankInput, list[Document]]):
    """Reorders retrieved documents with a rerank-layer reranker and keeps the best ``top_n``.

    Use it as ``base_compressor`` of a ``ContextualCompressionRetriever`` or as a Runnable in an
    LCEL chain fed ``{"query": ..., "documents": ...}``. Build it like the peers, with flat keywords
    (``RerankCompressor(model="cohere:rerank-v3.5", top_n=3, cohere_api_key=...)``,
    ``RerankCompressor(provider="sentence_transformer", model="embedded")``, any config field as a
    keyword; see :mod:`core.keywords`), with ``reranker=`` a spec or a reranker, or ``from_config``.
    ``model=`` also takes LangChain's ``HuggingFaceCrossEncoder``: its checkpoint and settings are
    read and loaded on rerank-layer's own local path. With no reranker given it is the embedded model.

    Returned documents are copies with ``metadata["relevance_score"]`` set; when the provider fails
    and the reranker is fail-open, the first-stage order is kept, ``relevance_score`` is left out
    and ``metadata["rerank_error"]`` says why.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", hide_input_in_errors=True)

    reranker: BaseReranker = Field(description="A core reranker, or its spec dict for create_reranker.")
    top_n: int | None = Field(default=3, ge=0, description="Keep at most this many documents; None: all.")
    score_threshold: float | None = Field(
        default=None, description="Drop documents whose relevance_score is below this value."
    )

    def __init__(self, **data: Any) -> None:
        # The reranker is built before pydantic validates, so a bad keyword's ValidationError lists the
        # keywords given, never their values (an API key among them). The validator below still serves
        # model_validate. (pydantic leaves it a plain classmethod; mypy sees its decorator proxy.)
        try:
            fields = type(self)._flat_keywords(data)  # type: ignore[operator]
        except ValidationError:
            raise
        except ValueError as exc:
            error = exc
        else:
            super().__init__(**fields)
            return
        raise ValidationError.from_exception_data(
            type(self).__name__,
            [{"type": "value_error", "loc": (), "input": sorted(data), "ctx": {"error": error}}],
        )

    @model_validator(mode="before")
    @classmethod
    def _flat_keywords(cls, data: Any) -> Any:
        """Turn ``provider=``, ``model=`` and config keywords (the peers' shapes) into ``reranker``."""
        if not isinstance(data, dict):
            return data
        own = {k: v for k, v in data.items() if k in cls.model_fields and k != "reranker"}
        rest = {k: v for k, v in data.items() if k not in own}
        model = rest.pop("model", None)
        if isinstance(model, BaseCrossEncoder):
            if "reranker" in rest:
                raise ConfigError("give either reranker= or a cross-encoder as model=, not both")
            rest.update(cross_encoder_settings(model))
            model = rest.pop("model")
        own["reranker"] = reranker_from_keywords(
            rest.pop("reranker", None),
            provider=rest.pop("provider", None),
            model=model,
            owner=cls.__name__,
            owner_fields=[k for k in cls.model_fields if k != "name"],
            **rest,
        )
        return own

    @field_validator("reranker", mode="before")
    @classmethod
    def _build_reranker(cls, value: Any) -> BaseReranker:
        return create_reranker(value)

    @field_serializer("reranker")
    def _dump_reranker(self, reranker: BaseReranker) -> dict[str, Any]:
        return reranker_spec(reranker)

    @classmethod
    def from_config(cls, spec: dict[str, Any], **kwargs: Any) -> RerankCompressor:
        """Build from the core's config dict, e.g. ``{"provider": "cohere", "config": {...}}``."""
        return cls(reranker=create_reranker(spec), **kwargs)

    # --- BaseDocumentCompressor ------------------------------------------------------------
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The best ``top_n`` documents for ``query``, best first, as new Documents."""
        return self.invoke({"query": query, "documents": documents}, {"callbacks": callbacks})

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Async ``compress_documents``: awaits the reranker's own async path."""
        return await self.ainvoke({"query": query, "documents": documents}, {"callbacks": callbacks})

    # --- Runnable ----------------------------------------------------------------------------
    def invoke(
        self, input: RerankInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        """Rerank ``input["documents"]`` for ``input["query"]`` (one callback run per call)."""
        return self._call_with_config(self._rerank, input, config)

    async def ainvoke(
        self, input: RerankInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async ``invoke`` on the reranker's ``arank``."""
        return await self._acall_with_config(self._arerank, input, config)

    def _rerank(self, input_: RerankInput) -> list[Document]:
        query, documents = _unpack(input_)
        texts = [doc.page_content for doc in documents]
        ranking = self.reranker.rank(query, texts, top_k=self.top_n, score_threshold=self.score_threshold)
        return ranked_documents(documents, ranking)

    async def _arerank(self, input_: RerankInput) -> list[Document]:
        query, documents = _unpack(input_)
        texts = [doc.page_content for doc in documents]
        ranking = await self.reranker.arank(
            query, texts, top_k=self.top_n, score_threshold=self.score_threshold
        )
        return ranked_documents(documents, ranking)


#: ``HuggingFaceCrossEncoder.model_kwargs`` keys that are config fields of ``sentence_transformer``.
CROSS_ENCODER_KWARGS = ("device", "trust_remote_code", "max_length")


def cross_encoder_settings(encoder: BaseCrossEncoder) -> dict[str, Any]:
    """The ``sentence_transformer`` keywords of LangChain's ``HuggingFaceCrossEncoder(model_name=...)``."""
    name = getattr(encoder, "model_name", None)
    if not isinstance(name, str):
        raise ConfigError(
            f"model={type(encoder).__name__}(...) has no model_name to load; pass a model name or a spec "
            "string such as 'sentence_transformer:cross-encoder/ms-marco-MiniLM-L-6-v2'"
        )
    kwargs = dict(getattr(encoder, "model_kwargs", None) or {})
    unknown = sorted(k for k in kwargs if k not in CROSS_ENCODER_KWARGS)
    if unknown:
        raise ConfigError(f"model_kwargs {unknown} of {type(encoder).__name__} have no equivalent here")
    return {"provider": "sentence_transformer", "model": name, "mode": "cross_encoder", **kwargs}


def _unpack(value: object) -> tuple[str, list[Document]]:
    """The query and documents of a Runnable input, checked."""
    if not isinstance(value, Mapping) or "query" not in value or "documents" not in value:
        raise InvalidInputError("input must be a mapping with 'query' and 'documents' keys")
    documents = validate_documents(value["documents"])
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InvalidInputError(f"documents[{i}] must be a langchain Document, got {type(doc).__name__}")
    return value["query"], list(documents)


def ranked_documents(documents: Sequence[Document], ranking: Ranking) -> list[Document]:
    """Copies of the ranked documents, in ranking order, with ``relevance_score`` (or the error) set."""
    out = []
    for item in ranking.items:
        doc = documents[item.index]
        metadata = {k: v for k, v in doc.metadata.items() if k not in (RELEVANCE_SCORE_KEY, ERROR_KEY)}
        if item.score is not None:
            metadata[RELEVANCE_SCORE_KEY] = item.score
        error = ranking.error or item.flag
        if error is not None:
            metadata[ERROR_KEY] = error
        out.append(doc.model_copy(update={"metadata": metadata}))
    return out
