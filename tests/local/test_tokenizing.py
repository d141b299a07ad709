"""TokenEncoder gives exactly the ids of the transformers tokenizer, on every path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.local.tokenizing import TokenEncoder, ascii_bert_normalizer

QUERY = "What is the Capital of FRANCE?"
TEXTS = [
    "Paris is the capital and largest city of France.",
    "The Eiffel Tower\tstands on the Champ de Mars\r\nin PARIS.",
    "Crème brûlée is a French dessert; 中文 text and naïve café.",
    "Berlin\x00 is\x07 Germany's\x1f capital\x7f.",
    "",
]

#: ASCII with control characters and line breaks, plus a few non-ASCII characters.
ALPHABET = st.sampled_from(
    [*"abcXYZ019 .,;!?'-", "\t", "\n", "\r", "\x00", "\x0b", "\x1b", "\x7f", "é", "中", "\u00a0", "\ufffd"]
)
TEXT = st.lists(ALPHABET, max_size=40).map("".join)


@pytest.fixture(scope="module")
def tokenizer(minilm_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def expected(tokenizer: Any, texts: list[str], pairs: list[str] | None, max_length: int) -> dict[str, Any]:
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    return {name: enc[name] for name in ("input_ids", "token_type_ids")}


@pytest.mark.parametrize("max_length", [8, 24, 512])
def test_pairs_and_single_texts_match(tokenizer: Any, max_length: int) -> None:
    queries, texts = [QUERY] * len(TEXTS), [t * 3 for t in TEXTS]
    encoder = TokenEncoder(tokenizer)
    assert encoder(queries, texts, max_length) == expected(tokenizer, queries, texts, max_length)
    assert encoder(texts, None, max_length) == expected(tokenizer, texts, None, max_length)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=6), max_length=st.integers(4, 40))
def test_any_text_matches(tokenizer: Any, pairs: list[tuple[str, str]], max_length: int) -> None:
    queries, texts = [q for q, _ in pairs], [t for _, t in pairs]
    encoder = TokenEncoder(tokenizer)
    assert encoder(queries, texts, max_length) == expected(tokenizer, queries, texts, max_length)
    assert encoder(texts, None, max_length) == expected(tokenizer, texts, None, max_length)


def test_the_ascii_path_is_the_bert_normaliser(tokenizer: Any) -> None:
    normalise = ascii_bert_normalizer(tokenizer.backend_tokenizer)
    assert normalise is not None
    assert normalise("A\tB\x01c\r\nD") == "a bc  d"
    assert normalise("A\tB\x01c\r\nD") == tokenizer.backend_tokenizer.normalizer.normalize_str(
        "A\tB\x01c\r\nD"
    )


def test_a_cased_bert_normaliser_keeps_case(tokenizer: Any) -> None:
    from tokenizers import normalizers

    cased = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    cased.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    normalise = ascii_bert_normalizer(cased.backend_tokenizer)
    assert normalise is not None and normalise("Paris\tFrance") == "Paris France"
    queries = [QUERY] * len(TEXTS)
    assert TokenEncoder(cased)(queries, TEXTS, 32) == expected(cased, queries, TEXTS, 32)


def test_other_normalisers_go_through_the_library(tokenizer: Any) -> None:
    from tokenizers import normalizers

    other = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    other.backend_tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    assert ascii_bert_normalizer(other.backend_tokenizer) is None
    queries = [QUERY] * len(TEXTS)
    assert TokenEncoder(other)(queries, TEXTS, 32) == expected(other, queries, TEXTS, 32)


def test_a_slow_tokenizer_gives_the_same_ids(minilm_path: Path, tokenizer: Any) -> None:
    from transformers import BertTokenizer

    slow = BertTokenizer.from_pretrained(minilm_path)
    queries = [QUERY] * len(TEXTS)
    assert TokenEncoder(slow)(queries, TEXTS, 32) == expected(tokenizer, queries, TEXTS, 32)
