"""The pointwise and logprobs modes: one chat request per document, the answer read as a score."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ProviderError
from core.providers.llm.chat import CacheKey, ChatReply, ChatRequest, Judge, total_usage
from core.providers.llm.config import PROVIDER, Mode
from core.providers.llm.exchange import Exchange
from core.providers.llm.parsing import ParsedScore, ends_inside_number, parse_score, yes_probability
from core.results import Scores, merge_usage

#: Score given to a document the LLM could not score (flagged with the reason).
NEUTRAL_SCORE = 0.5
logger = logging.getLogger("rerank_layer")


@dataclass(frozen=True)
class _Plan:
    """One chat request for one document, and the cache key of its answer."""

    mode: Mode
    key: CacheKey
    request: ChatRequest


#: Statuses with which an endpoint may refuse the logprobs parameters (bad request, unprocessable).
_REFUSALS = frozenset({400, 422})


@dataclass
class PointwiseJudge(Judge):
    """Scores one document per chat request: a number on the declared scale, or P(yes) from logprobs.

    In logprobs mode an endpoint that returns no logprobs, or refuses the request (400, 422) and
    then answers the same document pointwise, is taken not to support them: that document is
    scored pointwise, and from then on every document. A pointwise answer cut by ``max_tokens``
    (``finish_reason="length"``) counts only when it does not end inside a number: ``"0."`` cut
    from ``"0.85"`` gets the neutral score and a flag that says to raise ``max_tokens``.
    """

    logprobs_available: bool = True

    def exchange(self, query: str, text: str) -> Exchange[ChatRequest, ChatReply, Scores]:
        """The chat requests that score ``text``: none when cached, two when logprobs turn out missing."""
        plan = self._plan(query, text)
        cached = self.cache.get(plan.key)
        if cached is not None:
            return Scores([cached], usage={"cache_hits": 1})
        try:
            reply = yield plan.request
        except ProviderError as refusal:
            if plan.mode != "logprobs" or refusal.status not in _REFUSALS:
                raise
            plan = self._plan(query, text, "pointwise")
            reply = yield plan.request  # if this fails too, the refusal was not about logprobs
            self._without_logprobs(f"refused the logprobs request ({refusal})")
            return self._finish(plan, reply)
        if plan.mode == "logprobs" and reply.top_logprobs is None:
            self._without_logprobs("returned no logprobs")
            first, plan = reply.usage, self._plan(query, text, "pointwise")
            return self._finish(plan, (yield plan.request), first)
        return self._finish(plan, reply)

    def _plan(self, query: str, text: str, mode: Mode | None = None) -> _Plan:
        if mode is None:
            mode = "logprobs" if self.config.mode == "logprobs" and self.logprobs_available else "pointwise"
        if mode == "logprobs":
            messages = self.prompts.logprobs(query, text)
            return _Plan("logprobs", *self.prepare("logprobs", messages, 1, self.config.top_logprobs))
        messages = self.prompts.pointwise(query, text)
        return _Plan("pointwise", *self.prepare("pointwise", messages, self.endpoint.max_tokens))

    def _without_logprobs(self, why: str) -> None:
        """Score pointwise from now on (warned once)."""
        if self.logprobs_available:
            self.logprobs_available = False
            logger.warning("llm_reranker: %s %s; scoring pointwise instead", self.endpoint.model, why)

    def _finish(self, plan: _Plan, reply: ChatReply, earlier: dict[str, float] | None = None) -> Scores:
        """Parse one answer into a one-document Scores (flagged with NEUTRAL_SCORE on failure)."""
        if plan.mode == "logprobs":
            parsed = yes_probability(reply.top_logprobs or [])
        else:
            parsed = parse_score(reply.content, self.config.score_max)
            if reply.finish_reason == "length" and ends_inside_number(reply.content):
                parsed = ParsedScore(
                    None,
                    f"answer cut at max_tokens={plan.request['max_tokens']} before its score was complete "
                    f"({parsed.problem or repr(reply.content[-40:])}); raise max_tokens",
                )
        usage = merge_usage(earlier or {}, reply.usage)
        if parsed.value is None or not math.isfinite(parsed.value):
            return Scores([NEUTRAL_SCORE], usage=usage, flags={0: f"{plan.mode}: {parsed.problem}"})
        self.cache.put(plan.key, parsed.value)
        return Scores([parsed.value], usage=usage)


def collect(outcomes: Sequence[Scores | ProviderError]) -> Scores:
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
    return Scores(values, usage=total_usage(usages), flags=flags)
