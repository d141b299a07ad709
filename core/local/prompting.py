"""An LLM reranker's prompt: which template and tokens apply, and (query, document) pairs as token ids.

``resolve_prompt`` combines the checkpoint, its family and the config's overrides into a
``PromptSpec``; ``PromptEncoder`` tokenises a call's pairs with it, once, without padding. Static
segments are tokenised once, a query-only segment once per call, the segment holding the document
once per pair (all in one Rust batch). Budget: ``max_length`` tokens per pair, prompt included;
a query-only segment keeps at most 3/4 of it (as FlagEmbedding and mxbai do) and the document
segment is cut at its end to fit (the references' right truncation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError
from core.local.checkpoints import Checkpoint
from core.local.families import BOS, Family, family_by_name, family_names, fill, find_family, template_fields
from core.local.prompt_options import PromptOptions
from core.local.tokenizing import TokenEncoder


@dataclass(frozen=True)
class PromptSpec:
    """Everything that turns pairs into token ids and last-token logits into a score."""

    family: str
    segments: tuple[str, ...]
    instruction: str
    yes_token: str | None
    no_token: str | None
    #: Token ids declared by the checkpoint (sentence-transformers ``LogitScore``), used as they are.
    yes_id: int | None = None
    no_id: int | None = None
    score_scale: float = 1.0
    strip: bool = False
    max_query_chars: int | None = None
    max_document_chars: int | None = None

    @property
    def uses_no_token(self) -> bool:
        """Scores are log-odds ``yes - no`` (else the yes logit alone)."""
        return self.no_token is not None or self.no_id is not None

    def render(self, query: str, document: str, bos: str = "") -> str:
        """The prompt as one string (``bos`` stands for the BOS segment): for checks and docs."""
        values = self.values(query, document)
        return "".join(bos if s == BOS else fill(s, values) for s in self.segments)

    def values(self, query: str, document: str) -> dict[str, str]:
        """The placeholders' values for one pair (the family's strip and length caps applied)."""
        query, document = query[: self.max_query_chars], document[: self.max_document_chars]
        if self.strip:
            query, document = query.strip(), document.strip()
        return {"query": query, "document": document, "instruction": self.instruction}


def _instruction(family: Family | None, options: PromptOptions) -> str:
    text = options.instruction if options.instruction is not None else family.instruction if family else None
    if not text:
        return ""
    return (family.instruction_format if family else "{instruction}").replace("{instruction}", text)


def resolve_prompt(checkpoint: Checkpoint, options: PromptOptions) -> PromptSpec | None:
    """The prompt of a decoder checkpoint; None for a decoder classifier of no known family.

    A causal LM must be a known family, or be given a ``prompt_template`` and tokens: anything
    else would be scored from logits nobody trained for the task, and is refused.
    """
    family = family_by_name(options.family) if options.family else find_family(*checkpoint.names)
    template = options.prompt_template
    if family is None and template is None:
        if checkpoint.kind == "decoder_classifier":
            return None
        raise ConfigError(
            f"model {checkpoint.name!r} is a causal language model ({', '.join(checkpoint.architectures)}) "
            f"of no known LLM reranker family, so nothing says how to prompt and score it. Set config "
            f"family (one of {family_names()}) or prompt_template with yes_token (and no_token)."
        )
    if template is not None:
        segments = (template,) if isinstance(template, str) else tuple(template)
    else:
        assert family is not None, "checked above"
        segments = family.segments
    declared = options.yes_token is None and options.no_token is None and checkpoint.true_token_id is not None
    yes = options.yes_token or (family.yes_token if family else None)
    no = options.no_token or (family.no_token if family else None)
    if checkpoint.kind == "decoder_classifier":  # scored by its own head, not by answer tokens
        yes = no = None
    elif yes is None and not declared:
        raise ConfigError("yes_token is required with a prompt_template of no known family")
    return PromptSpec(
        family=family.name if family and template is None else "custom",
        segments=segments,
        instruction=_instruction(family, options),
        yes_token=None if declared else yes,
        no_token=None if declared else no,
        yes_id=checkpoint.true_token_id if declared else None,
        no_id=checkpoint.false_token_id if declared else None,
        score_scale=family.score_scale if family else 1.0,
        strip=family.strip if family else False,
        max_query_chars=family.max_query_chars if family else None,
        max_document_chars=family.max_document_chars if family else None,
    )


def single_token_id(tokenizer: Any, token: str, field: str) -> int:
    """The id of ``token``, which must be one token of the vocabulary (``field`` names it in errors)."""
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(
            f"{field}={token!r} is {len(ids)} tokens for this tokenizer; it must be exactly one"
        )
    return int(ids[0])


class PromptEncoder:
    """Token ids of (query, document) pairs under one ``PromptSpec`` for one tokenizer."""

    def __init__(self, spec: PromptSpec, tokenizer: Any, encoder: TokenEncoder) -> None:
        self.spec = spec
        self.encoder = encoder
        bos = getattr(tokenizer, "bos_token_id", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.parts: list[tuple[str, Any]] = []  # ("static", ids) | ("query", segment) | ("document", segment)
        for segment in spec.segments:
            fields = template_fields(segment)
            if segment == BOS:
                self.parts.append(("static", [bos] if bos is not None and bos != pad else []))
            elif "document" in fields:
                self.parts.append(("document", segment))
            elif "query" in fields:
                self.parts.append(("query", segment))
            else:
                text = fill(segment, {"instruction": spec.instruction, "query": "", "document": ""})
                self.parts.append(("static", tokenizer(text, add_special_tokens=False)["input_ids"]))
        self.static_length = sum(len(ids) for kind, ids in self.parts if kind == "static")
        self.yes_id = (
            spec.yes_id if spec.yes_id is not None else _token(tokenizer, spec.yes_token, "yes_token")
        )
        no_id = spec.no_id if spec.no_id is not None else _token(tokenizer, spec.no_token, "no_token")
        self.no_id: int | None = no_id

    def _tokens(self, texts: list[str], limit: int) -> list[list[int]]:
        return self.encoder(texts, None, limit, add_special_tokens=False)["input_ids"]

    def _query_parts(self, values: dict[str, str], max_length: int) -> dict[int, list[int]]:
        """Ids of each query-only segment, at most 3/4 of ``max_length`` each."""
        return {
            i: self._tokens([fill(segment, values)], max(1, max_length * 3 // 4))[0]
            for i, (kind, segment) in enumerate(self.parts)
            if kind == "query"
        }

    def _room(self, query_parts: dict[int, list[int]], max_length: int) -> int:
        room = max_length - self.static_length - sum(len(ids) for ids in query_parts.values())
        if room < 1:
            raise ConfigError(
                f"max_length={max_length} leaves no room for the document beside the "
                f"{max_length - room} tokens of the prompt and query; raise max_length"
            )
        return room

    def encode(self, query: str, texts: Sequence[str], max_length: int) -> dict[str, list[list[int]]]:
        """``input_ids`` of every (query, text) pair, at most ``max_length`` tokens each, unpadded."""
        values = self.spec.values(query, "")
        query_parts = self._query_parts(values, max_length)
        room = self._room(query_parts, max_length)
        document = next(segment for kind, segment in self.parts if kind == "document")
        filled = [fill(document, self.spec.values(query, text)) for text in texts]
        documents = self._tokens(filled, room)
        rows: list[list[int]] = []
        for ids in documents:
            row: list[int] = []
            for i, (kind, part) in enumerate(self.parts):
                row.extend(part if kind == "static" else query_parts[i] if kind == "query" else ids)
            rows.append(row)
        return {"input_ids": rows}

    def document_room(self, query: str, max_length: int) -> int:
        """Tokens of document text that fit in ``max_length`` beside the prompt and ``query``."""
        values = self.spec.values(query, "")
        query_parts = self._query_parts(values, max_length)
        document = next(segment for kind, segment in self.parts if kind == "document")
        overhead = len(self._tokens([fill(document, values)], max_length)[0])
        return max(1, self._room(query_parts, max_length) - overhead)


def _token(tokenizer: Any, token: str | None, field: str) -> int | None:
    return None if token is None else single_token_id(tokenizer, token, field)
