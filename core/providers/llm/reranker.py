"""``llm_reranker``: any OpenAI-compatible chat LLM judges relevance (pointwise, logprobs or listwise)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from core.config import RerankerConfig
from core.errors import ProviderError
from core.normalize import ScoreScale
from core.providers.hosted.base import ApiReranker
from core.providers.hosted.responses import error_message, status_error
from core.providers.hosted.retry import RetryPolicy
from core.providers.llm.cache import LRUCache
from core.providers.llm.chat import ChatReply, ChatRequest, chat_reply
from core.providers.llm.config import PROVIDER, LLMRerankerConfig
from core.providers.llm.endpoints import LLMEndpoint, resolve_endpoint
from core.providers.llm.exchange import adrive, drive
from core.providers.llm.listwise import ListwiseJudge
from core.providers.llm.pointwise import NEUTRAL_SCORE, PointwiseJudge, collect
from core.providers.llm.prompts import PromptBuilder
from core.results import Scores

__all__ = ["NEUTRAL_SCORE", "ChatReply", "LLMReranker", "LLMRerankerConfig", "chat_reply"]


class LLMReranker(ApiReranker):
    """Relevance from a chat LLM on any OpenAI-compatible endpoint; scores in [0, 1].

    ``pointwise``: one call per document, ``max_concurrency`` at a time, the answer parsed
    on the declared scale. ``logprobs``: P(yes) from the first answer token's logprobs
    (pointwise when the endpoint gives none). ``listwise``: RankGPT sliding windows;
    the score is ``(n - rank) / n``. A document the LLM could not score gets
    ``NEUTRAL_SCORE`` and a flag; if none could be scored the call fails.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = LLMRerankerConfig
    score_scale: ClassVar[ScoreScale] = "unit"
    sdk: ClassVar[str] = "openai"
    extra: ClassVar[str] = "llm"
    config: LLMRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        cfg = self.config
        settings = {
            "provider": cfg.llm_provider,
            "model": cfg.model,
            "api_key": cfg.api_key,
            "base_url": cfg.base_url,
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
        }
        self.endpoint: LLMEndpoint = resolve_endpoint(settings, cfg.llm)
        self.prompts = PromptBuilder(
            cfg.scoring_prompt, cfg.score_max, cfg.max_query_chars, cfg.max_document_chars
        )
        self.cache: LRUCache[Any, Any] = LRUCache(cfg.cache_size)
        self.pointwise = PointwiseJudge(cfg, self.endpoint, self.prompts, self.cache)
        self.listwise = ListwiseJudge(cfg, self.endpoint, self.prompts, self.cache)

    def __repr__(self) -> str:
        ep, mode = self.endpoint, self.config.mode
        return f"LLMReranker(provider={ep.provider!r}, model={ep.model!r}, mode={mode!r})"

    @property
    def model_name(self) -> str:
        """The chat model that scores."""
        return self.endpoint.model

    @property
    def concurrency(self) -> int:
        """Chat calls in flight at once for the whole call (``max_concurrency``; Mem0's ``max_workers``)."""
        return self.config.max_concurrency

    # --- client, errors, one chat call under the retry policy --------------------------------
    def _make_client(self, asynchronous: bool, http_client: Any) -> Any:
        return self.endpoint.make_client(asynchronous, self.config.timeout, http_client)

    def _classify(self, exc: Exception) -> ProviderError:
        openai = self._sdk()
        if isinstance(exc, openai.APIStatusError):
            message = error_message(getattr(exc, "body", None), default=str(exc))
            return status_error(PROVIDER, exc.status_code, message, exc.response.headers)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(f"no answer within the timeout: {exc}", provider=PROVIDER, retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"connection failed: {exc}", provider=PROVIDER, retryable=True)
        return ProviderError(f"{type(exc).__name__}: {exc}", provider=PROVIDER)

    def _ask(self, policy: RetryPolicy, client: Any) -> Callable[[ChatRequest], ChatReply]:
        def create(request: ChatRequest, timeout: float) -> ChatReply:
            return chat_reply(client.chat.completions.create(**request, timeout=timeout))

        return lambda request: policy.run(lambda timeout: create(request, timeout))

    def _aask(self, policy: RetryPolicy, client: Any) -> Callable[[ChatRequest], Awaitable[ChatReply]]:
        async def create(request: ChatRequest, timeout: float) -> ChatReply:
            return chat_reply(await client.chat.completions.create(**request, timeout=timeout))

        return lambda request: policy.arun(lambda timeout: create(request, timeout))

    # --- the score contract ------------------------------------------------------------
    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """Scores in [0, 1] for ``texts``, every document judged."""
        if not texts:
            return Scores([])
        client = self.client()  # created before the deadline starts
        ask = self._ask(self.retry_policy(), client)
        if self.config.mode == "listwise":
            return drive(self.listwise.exchange(query, texts), ask)

        def one(text: str) -> Scores | ProviderError:
            try:
                return drive(self.pointwise.exchange(query, text), ask)
            except ProviderError as exc:
                return exc

        workers = min(self.concurrency, len(texts))
        if workers == 1:
            return collect([one(t) for t in texts])
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-rerank") as pool:
            return collect(list(pool.map(one, texts)))

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        """Async ``score``: at most ``max_concurrency`` chat calls in flight."""
        if not texts:
            return Scores([])
        client = await self.aclient()
        ask = self._aask(self.retry_policy(), client)
        if self.config.mode == "listwise":
            return await adrive(self.listwise.exchange(query, texts), ask)

        async def one(text: str) -> Scores | ProviderError:
            try:
                return await adrive(self.pointwise.exchange(query, text), ask)
            except ProviderError as exc:
                return exc

        return collect(await asyncio.gather(*(one(t) for t in texts)))
