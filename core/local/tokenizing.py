"""Tokenisation for the local runtimes: a thread-safe tokenizer proxy and a direct, unpadded encoder."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from core.deps import require
from core.local.options import LOCAL


class LockedTokenizer:
    """Proxies a transformers tokenizer, one call at a time.

    A fast tokenizer reconfigures its Rust object (truncation, padding) on every call, and two
    threads calling it at once fail with "Already borrowed"; a shared model needs this lock.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.inner = tokenizer
        self._lock = threading.RLock()

    def _locked(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return function(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._locked(self.inner, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """Attributes as they are; methods (which may touch the Rust object) under the lock."""
        value = getattr(self.inner, name)
        return functools.partial(self._locked, value) if callable(value) else value


def pad_values(tokenizer: Any) -> dict[str, int]:
    """The value each input is padded with (attention masks pad with 0)."""
    return {
        "input_ids": int(tokenizer.pad_token_id or 0),
        "token_type_ids": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
    }


#: ASCII control characters BERT's ``clean_text`` deletes, and the whitespace it turns into spaces.
_BERT_CLEAN: dict[int, str | None] = {
    **{code: None for code in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]},
    **{ord(space): " " for space in "\t\n\r"},
}


def ascii_bert_normalizer(backend: Any) -> Callable[[str], str] | None:
    """For a tokenizer with a ``BertNormalizer``: the same normalisation of ASCII text, in Python.

    On ASCII text that normaliser only deletes control characters, turns tabs and line breaks into
    spaces and (if set) lowercases; ``str.translate`` and ``str.lower`` do that in a fraction of
    the time. ``None`` for any other normaliser.
    """
    normalizers = require("tokenizers.normalizers", extra="local", provider=LOCAL)
    normalizer = backend.normalizer
    if not isinstance(normalizer, normalizers.BertNormalizer):
        return None
    table = _BERT_CLEAN if normalizer.clean_text else {}
    lowercase = bool(normalizer.lowercase)

    def normalise(text: str) -> str:
        cleaned = text.translate(table)
        return cleaned.lower() if lowercase else cleaned

    return normalise


class TokenEncoder:
    """Tokenises texts or (query, text) pairs once, unpadded: ``input_ids`` (+ ``token_type_ids``).

    A fast tokenizer's Rust object is called directly through a private copy (truncation set
    here, offsets and masks skipped): the same ids as the transformers call, faster. With a BERT
    normaliser, all-ASCII inputs are normalised in Python and go through a second copy without
    the normaliser, a little faster still. A slow tokenizer goes through transformers. Every
    token returned is real, so the attention mask is built at padding time.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.names = [n for n in ("input_ids", "token_type_ids") if n in tokenizer.model_input_names]
        backend = getattr(tokenizer, "backend_tokenizer", None) if tokenizer.is_fast else None
        spec = backend.to_str() if backend is not None else ""
        self._rust = _private_copy(backend, spec) if backend is not None else None
        self._normalise = ascii_bert_normalizer(backend) if backend is not None else None
        self._bare = _private_copy(backend, spec) if self._normalise is not None else None
        if self._bare is not None:
            self._bare.normalizer = None
        self._length: int | None = None
        self._lock = threading.Lock()

    def __call__(
        self, texts: list[str], pairs: list[str] | None, max_length: int, add_special_tokens: bool = True
    ) -> dict[str, list[list[int]]]:
        """Token ids of ``texts`` (or of the pairs ``(texts[i], pairs[i])``), truncated to ``max_length``."""
        if self._rust is None:
            enc = self.tokenizer(
                texts, pairs, truncation=True, max_length=max_length, add_special_tokens=add_special_tokens
            )
            return {name: enc[name] for name in self.names if name in enc}
        inputs: list[Any] = texts if pairs is None else list(zip(texts, pairs, strict=True))
        groups = self._groups(texts, pairs)
        encodings: list[Any] = [None] * len(inputs)
        with self._lock:
            self._truncate_at(max_length)
            for rust, prepare, indices in groups:
                if not indices:
                    continue
                batch = [prepare(inputs[i]) for i in indices]
                encode = getattr(rust, "encode_batch_fast", rust.encode_batch)
                for i, encoding in zip(
                    indices, encode(batch, add_special_tokens=add_special_tokens), strict=True
                ):
                    encodings[i] = encoding
        out = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in self.names:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        return out

    def _groups(
        self, texts: list[str], pairs: list[str] | None
    ) -> list[tuple[Any, Callable[[Any], Any], list[int]]]:
        """(Rust tokenizer, input preparation, input indices): all-ASCII inputs apart when possible."""
        everything = list(range(len(texts)))
        normalise = self._normalise
        if normalise is None:
            return [(self._rust, _unchanged, everything)]
        second = texts if pairs is None else pairs
        plain = [i for i in everything if texts[i].isascii() and second[i].isascii()]
        plain_set = set(plain)
        rest = [i for i in everything if i not in plain_set]

        def prepare(item: Any) -> Any:
            return normalise(item) if isinstance(item, str) else (normalise(item[0]), normalise(item[1]))

        return [(self._bare, prepare, plain), (self._rust, _unchanged, rest)]

    def _truncate_at(self, max_length: int) -> None:
        """Set truncation on the private copies (only when ``max_length`` changes)."""
        if self._length == max_length:
            return
        side = str(getattr(self.tokenizer, "truncation_side", "right"))
        for copy in (self._rust, self._bare):
            if copy is not None:
                copy.enable_truncation(max_length, strategy="longest_first", direction=side)
        self._length = max_length


def _private_copy(backend: Any, spec: str) -> Any:
    """A copy of a Rust tokenizer (``spec``: its JSON) without padding; its settings stay its own."""
    copy = type(backend).from_str(spec)
    copy.no_padding()
    return copy


def _unchanged(item: Any) -> Any:
    return item
