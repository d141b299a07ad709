"""Tiny BEIR folders and TREC run files for the evaluation and CLI tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

CORPUS = {
    "d1": ("Paris", "Paris is the capital and largest city of France."),
    "d2": ("Berlin", "Berlin is the capital of Germany and its largest city."),
    "d3": ("", "The Eiffel Tower is a landmark in Paris, France."),
    "d4": ("Bananas", "Bananas are a yellow fruit rich in potassium."),
    "d5": ("Python", "Python is a programming language popular for data science."),
    "d6": ("Snakes", "A python is a large snake that kills its prey by constriction."),
}
QUERIES = {
    "q1": "What is the capital of France?",
    "q2": "python programming language",
    "q3": "yellow fruit",
    "q4": "a query nobody judged",
}
QRELS = {"q1": {"d1": 2, "d3": 1}, "q2": {"d5": 1}, "q3": {"d4": 1}}


def write_beir(
    folder: Path,
    corpus: Mapping[str, tuple[str, str]] = CORPUS,
    queries: Mapping[str, str] = QUERIES,
    qrels: Mapping[str, Mapping[str, int]] = QRELS,
    split: str = "test",
) -> Path:
    """Write a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and return it."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in corpus.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for qid, text in queries.items():
            out.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_trec_run(path: Path, run: Mapping[str, Sequence[str]]) -> Path:
    """A TREC run file ranking each query's documents in the given order (scores 10, 9, ...)."""
    with path.open("w") as out:
        for qid, docs in run.items():
            for rank, doc in enumerate(docs, 1):
                out.write(f"{qid} Q0 {doc} {rank} {10.0 - rank} first\n")
    return path
