"""The listwise mode (RankGPT): windows of the candidates ranked by the LLM, swept bottom-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ProviderError
from core.providers.llm.chat import CacheKey, ChatReply, ChatRequest, Judge, total_usage
from core.providers.llm.config import PROVIDER
from core.providers.llm.exchange import Exchange
from core.providers.llm.permutation import parse_permutation
from core.providers.llm.sweep import rank_scores, sliding_window_sweep
from core.results import Scores

logger = logging.getLogger("rerank_layer")


@dataclass
class _Run:
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
        return Scores(rank_scores(order), usage=total_usage(self.usages), flags=self.flags)


class ListwiseJudge(Judge):
    """Ranks the candidates in windows of ``window_size``, one chat request per window.

    A window whose request failed, or whose answer names no valid id, keeps its order and
    its documents are flagged; the call fails only when no window got a usable ranking.
    """

    def exchange(self, query: str, texts: Sequence[str]) -> Exchange[ChatRequest, ChatReply, Scores]:
        """The chat requests of one sweep (or ``listwise_passes`` sweeps) over ``texts``."""
        cfg, run = self.config, _Run()
        sweep = sliding_window_sweep(len(texts), cfg.window_size, cfg.window_step, cfg.listwise_passes)
        try:
            window = next(sweep)
            while True:
                window = sweep.send((yield from self._window(run, query, texts, window)))
        except StopIteration as finished:
            order: list[int] = finished.value
        return run.scores(order)

    def _window(
        self, run: _Run, query: str, texts: Sequence[str], window: list[int]
    ) -> Exchange[ChatRequest, ChatReply, list[int]]:
        """``window`` reordered by the LLM (or from the cache; unchanged when that failed)."""
        if len(window) < 2:
            return window
        messages = self.prompts.listwise(query, [texts[i] for i in window])
        key, request = self.prepare("listwise", messages, max(self.endpoint.max_tokens, 6 * len(window) + 16))
        run.windows += 1
        cached = self.cache.get(key)
        if cached is not None:
            run.usable += 1
            run.usages.append({"cache_hits": 1})
            return [window[j] for j in cached]
        try:
            reply = yield request
        except ProviderError as error:
            run.errors.append(error)
            for i in window:
                run.flags[i] = f"listwise window failed, kept its order: {error}"
            return window
        return self._ranked(run, key, window, reply)

    def _ranked(self, run: _Run, key: CacheKey, window: list[int], reply: ChatReply) -> list[int]:
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
