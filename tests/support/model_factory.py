"""Build tiny random cross-encoder checkpoints for tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

_WORD_TEXT = (
    "the a of and to in is for on with what how why who paris france capital city river eiffel tower "
    "python snake language code program cat dog animal pet food apple fruit tree green red blue sky "
    "ocean water fish rain weather sun moon star space rocket earth planet music song guitar piano art "
    "history war king queen england london germany berlin bread cheese wine coffee tea sport football"
)
WORDS = _WORD_TEXT.split()

#: A query and documents in the tiny models' vocabulary, the first document the obvious match.
QUERY = "capital city of france"
TEXTS = [
    "paris is the capital city of france",
    "the cat is a small pet animal",
    "python is a programming language",
    "the eiffel tower stands in paris by the river",
    "cheese and wine from france",
    "football is a sport played in england and germany with a ball on a green field",
    "rain",
]


def build_tiny_cross_encoder(folder: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """Save a random 2-layer BERT for sequence classification with a word-level vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(seed)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        initializer_range=0.5,
        architectures=["BertForSequenceClassification"],
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
