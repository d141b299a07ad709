"""Length-sorted batches padded to their longest member: little padding, memory bounded by batch size."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from core.deps import require
from core.local.options import LOCAL

#: Tokenised inputs: feature name -> one token list per input (no padding).
Features = Mapping[str, Sequence[Sequence[int]]]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Input positions grouped ``batch_size`` at a time, longest inputs first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(
    features: Features, indices: Sequence[int], pad_values: Mapping[str, int], padding_side: str = "right"
) -> dict[str, np.ndarray]:
    """int64 arrays of shape (len(indices), longest) for the inputs at ``indices``.

    ``features`` hold real tokens only; the ``attention_mask`` (1 on them, 0 on padding) is built here.
    """
    lengths = [len(features["input_ids"][i]) for i in indices]
    width = max(lengths)
    batch: dict[str, np.ndarray] = {}
    for name, rows in features.items():
        if name == "attention_mask":
            continue
        array = np.full((len(indices), width), pad_values.get(name, 0), dtype=np.int64)
        for r, i in enumerate(indices):
            row = rows[i]
            if padding_side == "left":
                array[r, width - len(row) :] = row
            else:
                array[r, : len(row)] = row
        batch[name] = array
    positions = np.arange(width)
    if padding_side == "left":
        positions = positions[::-1]
    batch["attention_mask"] = (positions[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    return batch


def iter_padded_batches(
    features: Features,
    batch_size: int,
    pad_values: Mapping[str, int],
    padding_side: str = "right",
    progress: Any = None,
) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """(positions, padded arrays) per batch; ``progress`` wraps the batch list (e.g. tqdm)."""
    batches = length_sorted_batches([len(ids) for ids in features["input_ids"]], batch_size)
    for indices in progress(batches) if progress is not None else batches:
        yield indices, pad_batch(features, indices, pad_values, padding_side)


def progress_bar(enabled: bool) -> Any:
    """A tqdm wrapper for a batch list when ``enabled``, else None."""
    if not enabled:
        return None
    tqdm = require("tqdm", extra="local", provider=LOCAL).tqdm
    return lambda batches: tqdm(batches, desc="rerank")
