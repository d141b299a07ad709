"""Chat calls: the request arguments, the answer cache key, reading the reply leniently, usage."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.providers.hosted.responses import usage_counts
from core.providers.llm.cache import LRUCache
from core.providers.llm.config import LLMRerankerConfig
from core.providers.llm.endpoints import LLMEndpoint
from core.providers.llm.prompts import Message, PromptBuilder
from core.results import merge_usage

#: Arguments of ``chat.completions.create``; the attempt's ``timeout`` is added when it is sent.
ChatRequest = dict[str, Any]
#: What an answer is cached under: (model, mode, digest of the messages).
CacheKey = tuple[str, str, str]
#: Usage keys every LLM result reports, zero when unused.
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "requests", "cache_hits")


@dataclass
class Judge:
    """What a scoring mode works with: the config, the chat endpoint, the prompts and the answer cache."""

    config: LLMRerankerConfig
    endpoint: LLMEndpoint
    prompts: PromptBuilder
    cache: LRUCache[CacheKey, Any]

    def prepare(
        self, mode: str, messages: list[Message], max_tokens: int, top_logprobs: int | None = None
    ) -> tuple[CacheKey, ChatRequest]:
        """The cache key of the answer to ``messages`` in ``mode``, and the chat request asking for it."""
        key = cache_key(self.endpoint.model, mode, messages)
        return key, chat_request(self.endpoint, messages, max_tokens, top_logprobs)


def chat_request(
    endpoint: LLMEndpoint, messages: list[Message], max_tokens: int, top_logprobs: int | None = None
) -> ChatRequest:
    """The arguments of one chat call; with ``top_logprobs``, the first token's alternatives are asked for."""
    request: ChatRequest = {
        "model": endpoint.model,
        "messages": messages,
        "temperature": endpoint.temperature,
        "max_tokens": max_tokens,
    }
    if top_logprobs is not None:
        request.update(logprobs=True, top_logprobs=top_logprobs)
    return request


def cache_key(model: str, mode: str, messages: list[Message]) -> CacheKey:
    """The cache key of an answer to ``messages``."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return (model, mode, digest)


@dataclass(frozen=True)
class ChatReply:
    """What one chat completion gave: the text, the first token's alternatives, token usage, and why it
    stopped (``"length"``: cut by ``max_tokens``)."""

    content: str
    top_logprobs: list[tuple[str, float]] | None
    usage: dict[str, float]
    finish_reason: str | None = None


def _usage(response: Any) -> dict[str, float]:
    usage = getattr(response, "usage", None)
    tokens = {k: getattr(usage, k, None) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return {**usage_counts(**tokens), "requests": 1}


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
    finish = getattr(choice, "finish_reason", None)
    return ChatReply(
        content if isinstance(content, str) else "",
        _first_token_alternatives(choice),
        _usage(response),
        finish if isinstance(finish, str) else None,
    )


def total_usage(usages: Sequence[dict[str, float]]) -> dict[str, float]:
    """Usage of several chat calls summed, with every key of ``USAGE_KEYS`` present."""
    return merge_usage(dict.fromkeys(USAGE_KEYS, 0), *usages)
