"""The reranker contract and the one pipeline every provider runs through."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

from core.concurrency import gather_or_cancel, sharing_limit
from core.config import RerankerConfig
from core.errors import ConfigError, InvalidInputError, MissingDependencyError, ProviderError, RerankError
from core.normalize import ScoreScale, to_unit_interval
from core.results import RankedItem, Ranking, RerankedDocuments, Scores
from core.text import (
    extract_texts,
    validate_documents,
    validate_query,
    validate_score_threshold,
    validate_texts,
    validate_top_k,
)

logger = logging.getLogger("rerank_layer")

#: Keys ``rerank`` adds to each returned dict.
SCORE_KEY = "rerank_score"
RAW_SCORE_KEY = "rerank_raw_score"
ERROR_KEY = "rerank_error"


class BaseReranker(ABC):
    """A reranker: implement ``score`` (and ``ascore`` for native async); the rest is shared.

    ``score(query, texts)`` returns one raw score per text, in input order. The
    pipeline validates input, checks the scores, normalises them with the
    provider's ``score_scale`` rule, sorts, applies ``top_k`` / threshold, and
    on failure tries the fallback rerankers, then keeps the first-stage order
    (``on_error="fail_open"``) or raises (``on_error="raise"``).
    """

    provider: ClassVar[str] = "base"
    config_class: ClassVar[type[RerankerConfig]] = RerankerConfig
    score_scale: ClassVar[ScoreScale] = "logit"
    #: True for network-bound providers: ``rerank_many`` then runs queries concurrently.
    io_bound: ClassVar[bool] = False

    def __init__(
        self,
        config: RerankerConfig | dict[str, Any] | None = None,
        *,
        fallbacks: Sequence[BaseReranker] = (),
        **overrides: Any,
    ) -> None:
        self.config = self.config_class.build(config, **overrides)
        self.fallbacks: list[BaseReranker] = list(fallbacks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.config.model!r})"

    @property
    def model_name(self) -> str:
        """The model this reranker scores with."""
        return self.config.model or self.provider

    # --- the provider's job -------------------------------------------------------------
    @abstractmethod
    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw scores for ``texts`` against ``query``, one per text, in input order."""

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Async twin of ``score``; local models run it in a worker thread."""
        return await asyncio.to_thread(self.score, query, texts)

    def warmup(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Load models or clients eagerly (default: nothing to do)."""

    # --- scoring with checks ------------------------------------------------------------
    def _checked(self, texts: list[str], raw: object) -> Scores:
        """Validate raw scores: a list, one finite number per text."""
        if not isinstance(raw, (list, tuple)):
            raise ProviderError(f"score() returned {type(raw).__name__}, not a list", provider=self.provider)
        if len(raw) != len(texts):
            raise ProviderError(f"got {len(raw)} scores for {len(texts)} documents", provider=self.provider)
        values: list[float] = []
        for i, value in enumerate(raw):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ProviderError(f"score {i} is not a finite number: {value!r}", provider=self.provider)
            values.append(float(value))
        if not isinstance(raw, Scores):
            return Scores(values)
        return Scores(values, usage=raw.usage, flags=raw.flags, unscored=raw.unscored, scale=raw.scale)

    @property
    def scale(self) -> ScoreScale:
        """The scale of this reranker's raw scores (a provider may decide per model)."""
        return self.score_scale

    def normalized(self, raw: Sequence[float]) -> list[float]:
        """``rerank_score`` values for raw scores: their scale's rule, or raw if normalize is off.

        Their scale is the one ``raw`` names (``Scores.scale``, set by a reranker whose scores came
        from another, as a cascade's last stage's fallback), else this reranker's.
        """
        if not self.config.normalize:
            return list(raw)
        return to_unit_interval(raw, self.scale_of(raw))

    def scale_of(self, raw: Sequence[float]) -> ScoreScale:
        """The scale of raw scores this reranker returned."""
        named = raw.scale if isinstance(raw, Scores) else None
        return named or self.scale

    # --- the pipeline: each twin walks the same RankCall ------------------------------------
    def rank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> Ranking:
        """Rank ``texts`` for ``query``: the pipeline on plain strings."""
        call = RankCall(self, query, texts, top_k, score_threshold)
        for reranker in call.chain():
            with call.attempt(reranker):
                call.scored(reranker, reranker.score(query, call.texts))
        return call.result()

    async def arank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> Ranking:
        """Async twin of ``rank``."""
        call = RankCall(self, query, texts, top_k, score_threshold)
        for reranker in call.chain():
            with call.attempt(reranker):
                call.scored(reranker, await reranker.ascore(query, call.texts))
        return call.result()

    # --- Mem0's dict contract -------------------------------------------------------------
    def _texts_of(self, documents: object) -> list[str]:
        return extract_texts(validate_documents(documents), self.config.text_key, owner=self)

    def _unranked(
        self, query: str, documents: Sequence[dict[str, Any] | str], top_k: int | None
    ) -> RerankedDocuments:
        """``rerank=False``: the input checked, copied and cut to ``top_k``, in its own order."""
        self._texts_of(documents)
        validate_query(query)
        limit = validate_top_k(top_k)
        limit = limit if limit is not None else self.config.top_k
        items = [RankedItem(i, None, None) for i in range(len(documents))][:limit]
        ranking = Ranking(items, "none", None, attempts=[])
        return RerankedDocuments([_copy(documents[item.index]) for item in items], ranking)

    def rerank(
        self,
        query: str,
        documents: Sequence[dict[str, Any] | str],
        top_k: int | None = None,
        *,
        score_threshold: float | None = None,
        rerank: bool = True,
    ) -> RerankedDocuments:
        """Copies of ``documents`` with ``rerank_score`` added, best first (Mem0's contract)."""
        if not rerank:
            return self._unranked(query, documents, top_k)
        ranking = self.rank(query, self._texts_of(documents), top_k=top_k, score_threshold=score_threshold)
        return attach_scores(documents, ranking)

    async def arerank(
        self,
        query: str,
        documents: Sequence[dict[str, Any] | str],
        top_k: int | None = None,
        *,
        score_threshold: float | None = None,
        rerank: bool = True,
    ) -> RerankedDocuments:
        """Async twin of ``rerank``."""
        if not rerank:
            return self._unranked(query, documents, top_k)
        ranking = await self.arank(
            query, self._texts_of(documents), top_k=top_k, score_threshold=score_threshold
        )
        return attach_scores(documents, ranking)

    def rerank_many(
        self,
        requests: Sequence[tuple[str, Sequence[dict[str, Any] | str]]],
        top_k: int | None = None,
    ) -> list[RerankedDocuments]:
        """Rerank several (query, documents) pairs; concurrently for network providers.

        Network providers run up to ``max_concurrency`` queries at once, and all their requests
        share ``max_concurrency`` slots. Once one query raises, no further query is started, and
        the error is raised when the queries already running have ended.
        """
        if not self.io_bound or len(requests) < 2:
            return [self.rerank(q, docs, top_k) for q, docs in requests]
        stop = threading.Event()

        def one(query: str, docs: Sequence[dict[str, Any] | str]) -> RerankedDocuments:
            if stop.is_set():
                raise _NotStarted
            try:
                return self.rerank(query, docs, top_k)
            except BaseException:
                stop.set()  # before this future completes: the worker's next query sees it
                raise

        workers = min(self.config.max_concurrency, len(requests))
        with sharing_limit(self, self.config.max_concurrency), ThreadPoolExecutor(workers) as pool:
            # each query runs in a copy of this context, where its requests find the shared limit
            futures = [pool.submit(contextvars.copy_context().run, one, q, docs) for q, docs in requests]
            wait(futures, return_when=FIRST_EXCEPTION)
            if stop.is_set():
                pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None and not isinstance(error, _NotStarted):
                raise error
        return [future.result() for future in futures]

    async def arerank_many(
        self,
        requests: Sequence[tuple[str, Sequence[dict[str, Any] | str]]],
        top_k: int | None = None,
    ) -> list[RerankedDocuments]:
        """Async ``rerank_many``: at most ``max_concurrency`` queries, and as many requests, in flight.

        Once one query raises, no further query is started and those running are cancelled.
        """
        queries = asyncio.Semaphore(self.config.max_concurrency)
        failure: BaseException | None = None

        async def one(query: str, docs: Sequence[dict[str, Any] | str]) -> RerankedDocuments:
            nonlocal failure
            async with queries:
                if failure is not None:
                    raise _NotStarted
                try:
                    return await self.arerank(query, docs, top_k)
                except BaseException as exc:
                    failure = failure or exc  # before the slot is released to the next query
                    raise

        with sharing_limit(self, self.config.max_concurrency):
            try:
                return await gather_or_cancel(*(one(q, d) for q, d in requests))
            except _NotStarted:
                assert failure is not None, "a query is only skipped after another raised"
                raise failure from None


class _NotStarted(Exception):
    """A query of ``rerank_many`` not started because an earlier one raised."""


class RankCall:
    """The shared start and finish of one ``rank`` / ``arank`` call.

    Start: validate the input. Then ``chain()`` yields the reranker and its fallbacks in turn
    until one has scored (nothing when there is nothing to rank), each scored inside
    ``attempt()``. Finish: ``result()`` orders, cuts by ``top_k`` / threshold, or applies the
    failure policy.
    """

    def __init__(
        self,
        owner: BaseReranker,
        query: object,
        texts: object,
        top_k: object,
        score_threshold: float | None,
    ) -> None:
        validate_query(query)
        validate_score_threshold(score_threshold)
        self.owner = owner
        self.texts = validate_texts(texts)
        requested = validate_top_k(top_k)
        self.skip = not self.texts or requested == 0
        self.limit = requested if requested is not None else owner.config.top_k
        self.threshold = score_threshold if score_threshold is not None else owner.config.score_threshold
        self.log = AttemptLog()
        self._scored: tuple[BaseReranker, Scores] | None = None

    def chain(self) -> Iterator[BaseReranker]:
        """The rerankers to try, primary first, until one has scored."""
        if self.skip:
            return
        for reranker in (self.owner, *self.owner.fallbacks):
            yield reranker
            if self._scored is not None:
                return

    def attempt(self, reranker: BaseReranker) -> AbstractContextManager[None]:
        """Record an attempt of ``reranker``; its failure is logged and swallowed."""
        return self.log.attempt(reranker.provider)

    def scored(self, reranker: BaseReranker, raw: object) -> None:
        """Keep ``reranker``'s raw scores once they pass the checks."""
        self._scored = (reranker, reranker._checked(self.texts, raw))

    def result(self) -> Ranking:
        """The ranking, the first-stage order after a failure, or nothing when there was nothing to rank."""
        if self.skip:
            return Ranking([], self.owner.provider, self.owner.model_name)
        if self._scored is None:
            return self._failed()
        reranker, raw = self._scored
        scores = reranker.normalized(raw)
        unscored = raw.unscored  # left out by the provider: after every scored document, without a score
        order = sorted(range(len(scores)), key=lambda i: (i in unscored, -scores[i]))
        items = [
            RankedItem(i, None, None, raw.flags.get(i))
            if i in unscored
            else RankedItem(i, scores[i], raw[i], raw.flags.get(i))
            for i in order
        ]
        if self.threshold is not None:
            items = [item for item in items if item.score is not None and item.score >= self.threshold]
        return Ranking(
            items[: self.limit],
            reranker.provider,
            reranker.model_name,
            dict(raw.usage),
            attempts=self.log.attempts,
            errors=self.log.errors,
            scale=reranker.scale_of(raw),
        )

    def _failed(self) -> Ranking:
        error = self.log.last_error
        assert error is not None, "the chain always holds at least the owner"
        if self.owner.config.on_error == "raise":
            raise error
        message = f"{type(error).__name__}: {error}"
        logger.warning("reranking failed, keeping first-stage order: %s", message)
        items = [RankedItem(i, None, None) for i in range(len(self.texts))][: self.limit]
        attempts = [*self.log.attempts, "first_stage"]
        return Ranking(items, "first_stage", None, error=message, attempts=attempts, errors=self.log.errors)


class AttemptLog:
    """The rerankers tried in one call and how each failed."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.errors: list[str] = []
        self.last_error: Exception | None = None

    @contextmanager
    def attempt(self, provider: str) -> Iterator[None]:
        """Record an attempt; a provider failure is logged and swallowed, a config mistake raised."""
        self.attempts.append(provider)
        try:
            yield
        except (ConfigError, MissingDependencyError, InvalidInputError):
            raise
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, RerankError)
                else ProviderError(f"{type(exc).__name__}: {exc}", provider=provider)
            )
            logger.warning("reranker %s failed: %s", provider, error)
            self.errors.append(f"{provider}: {error}")
            self.last_error = error


def _copy(doc: dict[str, Any] | str) -> dict[str, Any]:
    return dict(doc) if isinstance(doc, dict) else {"text": doc}


def attach_scores(documents: Sequence[dict[str, Any] | str], ranking: Ranking) -> RerankedDocuments:
    """Copies of the ranked documents with ``rerank_score`` (and raw score / error) added."""
    out = []
    for item in ranking.items:
        doc = _copy(documents[item.index])
        doc[SCORE_KEY] = item.score
        doc[RAW_SCORE_KEY] = item.raw_score
        error = ranking.error or item.flag
        if error is not None:
            doc[ERROR_KEY] = error
        out.append(doc)
    return RerankedDocuments(out, ranking)
