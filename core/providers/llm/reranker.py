"""``llm_reranker``: any OpenAI-compatible chat LLM judges relevance (pointwise, logprobs or listwise)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from core.config import RerankerConfig
from core.deps import require
from core.errors import ProviderError
from core.normalize import ScoreScale
from core.providers.hosted.base import ApiReranker, ApiRerankerConfig, _Clock, error_message, status_error
from core.providers.llm.cache import LRUCache
from core.providers.llm.endpoints import LLMEndpoint, canonical_provider, check_llm_override, resolve_endpoint
from core.providers.llm.listwise import (
    arun_sweep,
    parse_permutation,
    rank_scores,
    run_sweep,
    sliding_window_sweep,
)
from core.providers.llm.parsing import parse_score, yes_probability
from core.providers.llm.prompts import Message, PromptBuilder, check_template
from core.results import Scores, merge_usage

PROVIDER = "llm_reranker"
#: Score given to a document the LLM could not score (flagged with the reason).
NEUTRAL_SCORE = 0.5

Mode = Literal["pointwise", "logprobs", "listwise"]
logger = logging.getLogger("rerank_layer")


class LLMRerankerConfig(ApiRerankerConfig):
    """Mem0's LLM reranker fields plus scoring mode, concurrency, windowing, truncation and cache."""

    provider: str = Field(
        default="openai",
        description="The LLM provider (not the reranker): openai, azure_openai, ollama, vllm, lmstudio, "
        "groq, together, deepseek, anthropic, gemini, xai, openrouter.",
    )
    model: str = Field(default="gpt-4o-mini", min_length=1, description="Chat model (Azure: deployment).")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(default=100, ge=1, description="Answer tokens for pointwise scoring.")
    scoring_prompt: str | None = Field(
        default=None, description="Pointwise user prompt with {query} and {document} placeholders."
    )
    llm: dict[str, Any] | None = Field(
        default=None, description="Mem0's nested {'provider', 'config'}; its values override the top level."
    )
    mode: Mode = Field(default="pointwise", description="pointwise, logprobs or listwise.")
    score_max: float = Field(
        default=1.0, gt=0, description="Top of the scale the prompt declares: 1 (0.0-1.0), 10 (0-10)..."
    )
    concurrency: int = Field(default=20, ge=1, description="Chat calls in flight at once for one query.")
    max_workers: int | None = Field(default=None, ge=1, description="Mem0's name for concurrency.")
    top_logprobs: int = Field(default=5, ge=1, le=20, description="Alternatives asked for in logprobs mode.")
    window_size: int = Field(default=20, ge=2, description="Listwise: documents per window.")
    window_step: int = Field(default=10, ge=1, description="Listwise: how far the window moves up.")
    listwise_passes: int = Field(
        default=1, ge=1, description="Listwise: sweeps, stopping when one changes nothing."
    )
    max_query_chars: int = Field(default=2000, ge=16, description="The query is cut to this many characters.")
    max_document_chars: int = Field(
        default=4000, ge=16, description="Each document is cut to this many characters."
    )
    cache_size: int = Field(
        default=1024, ge=0, description="Answers kept in the in-memory LRU cache; 0: none."
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds allowed for one chat call.")
    deadline: float | None = Field(
        default=120.0,
        gt=0,
        description="Seconds for the whole rerank call, retries included; None: no bound.",
    )

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return canonical_provider(value)

    @field_validator("scoring_prompt")
    @classmethod
    def _template_fields(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> LLMRerankerConfig:
        if self.llm is not None:
            check_llm_override(self.llm, self.provider)
        if self.window_step >= self.window_size:
            raise ValueError(
                f"window_step ({self.window_step}) must be smaller than window_size ({self.window_size})"
            )
        if "documents_per_request" in self.model_fields_set:
            raise ValueError("documents_per_request does not apply to llm_reranker (see window_size)")
        both = self.max_workers is not None and "concurrency" in self.model_fields_set
        if both and self.max_workers != self.concurrency:
            raise ValueError("set concurrency or its Mem0 alias max_workers, not both")
        return self


@dataclass(frozen=True)
class ChatReply:
    """What one chat completion gave: the text, the first token's alternatives, token usage."""

    content: str
    top_logprobs: list[tuple[str, float]] | None
    usage: dict[str, float]


def _usage(response: Any) -> dict[str, float]:
    usage = getattr(response, "usage", None)
    counts = {k: getattr(usage, k, None) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    out = {k: float(v) for k, v in counts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**out, "requests": 1.0}


def _pair(item: Any) -> tuple[str, float] | None:
    token, logprob = getattr(item, "token", None), getattr(item, "logprob", None)
    if token is None or isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
        return None
    return str(token), float(logprob)


def _first_token_alternatives(choice: Any) -> list[tuple[str, float]] | None:
    """``(token, logprob)`` pairs for the first non-blank answer token; None when there are no logprobs."""
    tokens = getattr(getattr(choice, "logprobs", None), "content", None)
    if not tokens:
        return None
    token = next((t for t in tokens if str(getattr(t, "token", "")).strip()), tokens[0])
    pairs = [p for p in map(_pair, getattr(token, "top_logprobs", None) or []) if p is not None]
    chosen = _pair(token)
    if chosen is not None and chosen[0] not in {p[0] for p in pairs}:
        pairs.append(chosen)
    return pairs


def chat_reply(response: Any) -> ChatReply:
    """Read a ``ChatCompletion`` leniently: no choices or no content reads as an empty answer."""
    choices = getattr(response, "choices", None) or []
    choice = choices[0] if choices else None
    content = getattr(getattr(choice, "message", None), "content", None)
    return ChatReply(
        content if isinstance(content, str) else "", _first_token_alternatives(choice), _usage(response)
    )


@dataclass(frozen=True)
class _Plan:
    """One pointwise/logprobs chat call for one document."""

    mode: Mode
    messages: list[Message]
    key: tuple[str, str, str]
    max_tokens: int


@dataclass
class _ListwiseRun:
    """Bookkeeping of one listwise rerank: usage, per-document flags, window outcomes."""

    usages: list[dict[str, float]] = field(default_factory=list)
    flags: dict[int, str] = field(default_factory=dict)
    windows: int = 0
    usable: int = 0
    errors: list[ProviderError] = field(default_factory=list)

    def scores(self, order: list[int]) -> Scores:
        """Rank-derived scores for the final order; raise when no window was ranked at all."""
        if self.windows and not self.usable:
            if self.errors:
                raise self.errors[0]
            raise ProviderError("no listwise window got a usable ranking", provider=PROVIDER)
        return Scores(rank_scores(order), usage=_total_usage(self.usages), flags=self.flags)


def _total_usage(usages: Sequence[dict[str, float]]) -> dict[str, float]:
    base = {
        "prompt_tokens": 0.0,
        "completion_tokens": 0.0,
        "total_tokens": 0.0,
        "requests": 0.0,
        "cache_hits": 0.0,
    }
    return merge_usage(base, *usages)


class LLMReranker(ApiReranker):
    """Relevance from a chat LLM on any OpenAI-compatible endpoint; scores in [0, 1].

    ``pointwise``: one call per document, ``concurrency`` at a time, the answer parsed
    on the declared scale. ``logprobs``: P(yes) from the first answer token's logprobs
    (pointwise when the endpoint gives none). ``listwise``: RankGPT sliding windows;
    the score is ``(n - rank) / n``. A document the LLM could not score gets
    ``NEUTRAL_SCORE`` and a flag; if none could be scored the call fails.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = LLMRerankerConfig
    score_scale: ClassVar[ScoreScale] = "unit"
    config: LLMRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require("openai", extra="llm", provider=PROVIDER)
        cfg = self.config
        settings = {
            "provider": cfg.provider,
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
        self.cache: LRUCache[tuple[str, str, str], Any] = LRUCache(cfg.cache_size)
        self._logprobs_available = True

    def __repr__(self) -> str:
        ep, mode = self.endpoint, self.config.mode
        return f"LLMReranker(provider={ep.provider!r}, model={ep.model!r}, mode={mode!r})"

    @property
    def model_name(self) -> str:
        """The chat model that scores."""
        return self.endpoint.model

    @property
    def concurrency(self) -> int:
        """Chat calls in flight at once (``max_workers`` when given, else ``concurrency``)."""
        return self.config.max_workers or self.config.concurrency

    # --- client and errors -------------------------------------------------------------
    def _make_client(self, asynchronous: bool) -> Any:
        return self.endpoint.make_client(asynchronous, self.config.timeout)

    def _classify(self, exc: Exception) -> ProviderError:
        openai = require("openai", extra="llm", provider=PROVIDER)
        if isinstance(exc, openai.APIStatusError):
            message = error_message(getattr(exc, "body", None), default=str(exc))
            return status_error(PROVIDER, exc.status_code, message, exc.response.headers)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(f"no answer within the timeout: {exc}", provider=PROVIDER, retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"connection failed: {exc}", provider=PROVIDER, retryable=True)
        return ProviderError(f"{type(exc).__name__}: {exc}", provider=PROVIDER)

    def _key(self, mode: str, messages: list[Message]) -> tuple[str, str, str]:
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        return (self.endpoint.model, mode, digest)

    def _create_kwargs(self, messages: list[Message], max_tokens: int, logprobs: bool) -> dict[str, Any]:
        """Arguments of ``chat.completions.create`` (the per-attempt ``timeout`` is added by the caller)."""
        kwargs: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": self.endpoint.temperature,
            "max_tokens": max_tokens,
        }
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=self.config.top_logprobs)
        return kwargs

    # --- pointwise / logprobs: one document per request ------------------------------------
    def _plan(self, query: str, text: str) -> _Plan:
        if self.config.mode == "logprobs" and self._logprobs_available:
            messages = self.prompts.logprobs(query, text)
            return _Plan("logprobs", messages, self._key("logprobs", messages), 1)
        messages = self.prompts.pointwise(query, text)
        return _Plan("pointwise", messages, self._key("pointwise", messages), self.endpoint.max_tokens)

    def _cached(self, query: str, text: str) -> Scores | None:
        value = self.cache.get(self._plan(query, text).key)
        return None if value is None else Scores([value], usage={"cache_hits": 1.0})

    def _lacks_logprobs(self, plan: _Plan, reply: ChatReply) -> bool:
        if plan.mode != "logprobs" or reply.top_logprobs is not None:
            return False
        if self._logprobs_available:
            self._logprobs_available = False
            logger.warning(
                "llm_reranker: %s returned no logprobs; scoring pointwise instead", self.endpoint.model
            )
        return True

    def _finish(self, plan: _Plan, reply: ChatReply, earlier: dict[str, float] | None = None) -> Scores:
        """Parse one answer into a one-document Scores (flagged with NEUTRAL_SCORE on failure)."""
        if plan.mode == "logprobs":
            parsed = yes_probability(reply.top_logprobs or [])
        else:
            parsed = parse_score(reply.content, self.config.score_max)
        usage = merge_usage(earlier or {}, reply.usage)
        if parsed.value is None or not math.isfinite(parsed.value):
            return Scores([NEUTRAL_SCORE], usage=usage, flags={0: f"{plan.mode}: {parsed.problem}"})
        self.cache.put(plan.key, parsed.value)
        return Scores([parsed.value], usage=usage)

    @staticmethod
    def _single(texts: Sequence[str]) -> str:
        if len(texts) != 1:
            raise ValueError(f"llm_reranker sends one document per request, got {len(texts)}")
        return texts[0]

    def _request(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        """Score one document with one chat call (two when logprobs turn out to be missing)."""
        text = self._single(texts)
        plan = self._plan(query, text)
        kwargs = self._create_kwargs(plan.messages, plan.max_tokens, plan.mode == "logprobs")
        reply = chat_reply(client.chat.completions.create(**kwargs, timeout=timeout))
        if self._lacks_logprobs(plan, reply):
            first, plan = reply.usage, self._plan(query, text)
            kwargs = self._create_kwargs(plan.messages, plan.max_tokens, False)
            return self._finish(
                plan, chat_reply(client.chat.completions.create(**kwargs, timeout=timeout)), first
            )
        return self._finish(plan, reply)

    async def _arequest(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        """Async ``_request``."""
        text = self._single(texts)
        plan = self._plan(query, text)
        kwargs = self._create_kwargs(plan.messages, plan.max_tokens, plan.mode == "logprobs")
        reply = chat_reply(await client.chat.completions.create(**kwargs, timeout=timeout))
        if self._lacks_logprobs(plan, reply):
            first, plan = reply.usage, self._plan(query, text)
            kwargs = self._create_kwargs(plan.messages, plan.max_tokens, False)
            return self._finish(
                plan, chat_reply(await client.chat.completions.create(**kwargs, timeout=timeout)), first
            )
        return self._finish(plan, reply)

    def _collect(self, outcomes: Sequence[Scores | ProviderError]) -> Scores:
        """One Scores from per-document outcomes; raise when no document got a score."""
        values: list[float] = []
        flags: dict[int, str] = {}
        usages: list[dict[str, float]] = []
        errors = [o for o in outcomes if isinstance(o, ProviderError)]
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, ProviderError):
                values.append(NEUTRAL_SCORE)
                flags[i] = f"request failed: {outcome}"
                continue
            values.append(outcome[0])
            usages.append(outcome.usage)
            if 0 in outcome.flags:
                flags[i] = outcome.flags[0]
        if len(flags) == len(outcomes):
            if errors:
                raise errors[0]
            raise ProviderError(f"no document could be scored; first problem: {flags[0]}", provider=PROVIDER)
        if flags:
            first = next(iter(flags.items()))
            logger.warning(
                "llm_reranker: %d of %d documents got no score (neutral %.1f); document %d: %s",
                len(flags),
                len(outcomes),
                NEUTRAL_SCORE,
                *first,
            )
        return Scores(values, usage=_total_usage(usages), flags=flags)

    # --- the score contract ------------------------------------------------------------
    def score(self, query: str, texts: Sequence[str], *, top_n: int | None = None) -> Scores:
        """Scores in [0, 1] for ``texts``; ``top_n`` is ignored (every document is judged)."""
        if not texts:
            return Scores([])
        if self.config.mode == "listwise":
            return self._listwise(query, texts)
        clock = _Clock(self.config.deadline)

        def one(text: str) -> Scores | ProviderError:
            try:
                return self._cached(query, text) or self._one(query, [text], clock)
            except ProviderError as exc:
                return exc

        workers = min(self.concurrency, len(texts))
        if workers == 1:
            return self._collect([one(t) for t in texts])
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-rerank") as pool:
            return self._collect(list(pool.map(one, texts)))

    async def ascore(self, query: str, texts: Sequence[str], *, top_n: int | None = None) -> Scores:
        """Async ``score``: at most ``concurrency`` chat calls in flight."""
        if not texts:
            return Scores([])
        if self.config.mode == "listwise":
            return await self._alistwise(query, texts)
        clock = _Clock(self.config.deadline)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(text: str) -> Scores | ProviderError:
            async with limit:
                try:
                    return self._cached(query, text) or await self._aone(query, [text], clock)
                except ProviderError as exc:
                    return exc

        return self._collect(await asyncio.gather(*(one(t) for t in texts)))

    # --- listwise ----------------------------------------------------------------------
    def _sweep(self, n: int) -> Any:
        cfg = self.config
        return sliding_window_sweep(n, cfg.window_size, cfg.window_step, cfg.listwise_passes)

    def _window_plan(
        self, query: str, texts: Sequence[str], window: list[int]
    ) -> tuple[list[Message], tuple[str, str, str], int]:
        messages = self.prompts.listwise(query, [texts[i] for i in window])
        return messages, self._key("listwise", messages), max(self.endpoint.max_tokens, 6 * len(window) + 16)

    def _window_cached(
        self, run: _ListwiseRun, key: tuple[str, str, str], window: list[int]
    ) -> list[int] | None:
        order = self.cache.get(key)
        if order is None:
            return None
        run.windows += 1
        run.usable += 1
        run.usages.append({"cache_hits": 1.0})
        return [window[j] for j in order]

    def _window_failed(self, run: _ListwiseRun, window: list[int], error: ProviderError) -> list[int]:
        run.windows += 1
        run.errors.append(error)
        for i in window:
            run.flags[i] = f"listwise window failed, kept its order: {error}"
        return window

    def _window_ranked(
        self, run: _ListwiseRun, key: tuple[str, str, str], window: list[int], reply: ChatReply
    ) -> list[int]:
        run.windows += 1
        run.usages.append(reply.usage)
        parsed = parse_permutation(reply.content, len(window))
        if parsed.found == 0:
            for i in window:
                run.flags[i] = f"listwise answer unusable ({'; '.join(parsed.problems)}), kept its order"
            return window
        run.usable += 1
        if parsed.problems:
            logger.warning("llm_reranker: listwise answer repaired: %s", "; ".join(parsed.problems))
        for j in parsed.missing:
            run.flags[window[j]] = "omitted from the model's ranking of a window; kept its relative order"
        if not parsed.problems:
            self.cache.put(key, parsed.order)
        return [window[j] for j in parsed.order]

    def _listwise(self, query: str, texts: Sequence[str]) -> Scores:
        run, clock = _ListwiseRun(), _Clock(self.config.deadline)

        def rank(window: list[int]) -> list[int]:
            if len(window) < 2:
                return window
            messages, key, max_tokens = self._window_plan(query, texts, window)
            cached = self._window_cached(run, key, window)
            if cached is not None:
                return cached
            kwargs = self._create_kwargs(messages, max_tokens, False)
            try:
                reply = self._retrying(
                    lambda client, timeout: chat_reply(
                        client.chat.completions.create(**kwargs, timeout=timeout)
                    ),
                    clock,
                )
            except ProviderError as exc:
                return self._window_failed(run, window, exc)
            return self._window_ranked(run, key, window, reply)

        return run.scores(run_sweep(self._sweep(len(texts)), rank))

    async def _alistwise(self, query: str, texts: Sequence[str]) -> Scores:
        run, clock = _ListwiseRun(), _Clock(self.config.deadline)

        async def rank(window: list[int]) -> list[int]:
            if len(window) < 2:
                return window
            messages, key, max_tokens = self._window_plan(query, texts, window)
            cached = self._window_cached(run, key, window)
            if cached is not None:
                return cached
            kwargs = self._create_kwargs(messages, max_tokens, False)

            async def call(client: Any, timeout: float) -> ChatReply:
                return chat_reply(await client.chat.completions.create(**kwargs, timeout=timeout))

            try:
                reply = await self._aretrying(call, clock)
            except ProviderError as exc:
                return self._window_failed(run, window, exc)
            return self._window_ranked(run, key, window, reply)

        return run.scores(await arun_sweep(self._sweep(len(texts)), rank))


__all__ = ["NEUTRAL_SCORE", "ChatReply", "LLMReranker", "LLMRerankerConfig", "chat_reply"]
