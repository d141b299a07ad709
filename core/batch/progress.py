"""The batch progress bar: pairs per second, with the rows done alongside."""

from __future__ import annotations

from types import TracebackType

from tqdm import tqdm


class Progress:
    """A tqdm bar counting pairs (so its rate is pairs/s) that also shows rows done."""

    def __init__(self, pairs: int, rows: int, *, enabled: bool, desc: str = "rerank") -> None:
        self.rows_total = rows
        self.rows = 0
        self.bar = tqdm(total=pairs, unit="pair", unit_scale=True, desc=desc, disable=not enabled)

    def advance(self, pairs: int, rows: int) -> None:
        """Count ``pairs`` scored and ``rows`` finished."""
        self.rows += rows
        self.bar.set_postfix_str(f"rows {self.rows}/{self.rows_total}", refresh=False)
        self.bar.update(pairs)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.close()
