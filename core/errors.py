"""Typed errors raised by the reranking layer."""

from __future__ import annotations


class RerankError(Exception):
    """Base class for every error this library raises."""


class ConfigError(RerankError, ValueError):
    """A reranker configuration is invalid (unknown key, bad value, unknown provider)."""


class InvalidInputError(RerankError, ValueError):
    """A call's arguments are invalid; the message names the field."""


class MissingDependencyError(RerankError, ImportError):
    """An optional package needed by a provider is not installed."""

    def __init__(self, package: str, extra: str, provider: str) -> None:
        self.package = package
        self.extra = extra
        self.provider = provider
        super().__init__(
            f"The '{provider}' reranker needs the '{package}' package. "
            f"Install it with: pip install 'rerank-layer[{extra}]'"
        )


class ProviderError(RerankError):
    """A provider failed to score: an API error, a bad response or a model failure."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.message = message
        prefix = f"[{provider}]" if status is None else f"[{provider} HTTP {status}]"
        super().__init__(f"{prefix} {message}")
