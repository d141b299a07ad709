"""Request and response bodies: Cohere's rerank v2, and the Jina / vLLM (and Cohere v1) shape.

Optional fields accept ``null`` (LangChain's Cohere wrapper sends ``max_tokens_per_doc: null``);
fields this server does not know are ignored, as the hosted APIs do.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def _document_text(value: Any) -> Any:
    """A Jina / Cohere v1 document: a string, or an object with a string ``text``."""
    if isinstance(value, dict):
        text = value.get("text")
        if not isinstance(text, str):
            raise ValueError("a document object needs a string 'text'")
        return text
    if not isinstance(value, str):
        raise ValueError("a document must be a string or an object with a string 'text'")
    return value


DocumentText = Annotated[str, BeforeValidator(_document_text)]
StrictCount = Annotated[int, Field(strict=True)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str = Field(description="The search query.")
    max_tokens_per_doc: StrictCount | None = Field(
        default=None, ge=1, description="Cut each document to its first N tokens before scoring."
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class CohereRerankRequest(_Request):
    """``POST /v2/rerank``: Cohere's rerank v2."""

    model: str = Field(min_length=1, description="Must be the served model's name.")
    documents: list[Annotated[str, Field(strict=True)]] = Field(description="Texts to rank.")
    top_n: StrictCount | None = Field(default=None, ge=1, description="Return only the best N.")


class JinaRerankRequest(_Request):
    """``POST /v1/rerank`` and ``POST /rerank``: Jina / vLLM (and Cohere v1) rerank."""

    model: str | None = Field(default=None, min_length=1, description="If given, the served model's name.")
    documents: list[DocumentText] = Field(description="Strings, or objects with a 'text' string.")
    top_n: StrictCount | None = Field(default=None, ge=0, description="Return only the best N (0: all).")
    return_documents: bool | None = Field(default=None, description="Echo each document (default true).")


class Result(BaseModel):
    """One document, best first; ``relevance_score`` is the layer's ``rerank_score`` (null if unscored)."""

    index: int
    relevance_score: float | None
    document: dict[str, str] | None = None


class ApiVersion(BaseModel):
    version: str = "2"


class BilledUnits(BaseModel):
    search_units: float


class Tokens(BaseModel):
    input_tokens: float


class Meta(BaseModel):
    """Cohere's ``meta``; ``warnings`` says when the first-stage order was kept."""

    api_version: ApiVersion = Field(default_factory=ApiVersion)
    billed_units: BilledUnits
    tokens: Tokens | None = None
    warnings: list[str] | None = None


class Usage(BaseModel):
    total_tokens: int


class CohereRerankResponse(BaseModel):
    """Cohere v2's answer."""

    id: str
    results: list[Result]
    meta: Meta


class JinaRerankResponse(BaseModel):
    """Jina / vLLM's answer, with Cohere v1's ``id`` and ``meta`` too."""

    id: str
    model: str
    results: list[Result]
    usage: Usage | None = None
    meta: Meta
