"""Resumable output: a folder of shard files and a manifest saying which input and spec they belong to.

A shard is a run of whole queries (about ``shard_pairs`` pairs); each is written to a temporary file
and renamed when complete, so a shard file that exists is finished. The manifest records the input's
SHA-256, the spec (keys masked), the row shape and the shard plan; a folder whose manifest differs
is never reused, so shards of different inputs or specs are never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.batch.rows import Plan
from core.errors import ConfigError

MANIFEST = "manifest.json"
#: Bump when what a shard holds changes.
SHARD_VERSION = 1


def plan_shards(plan: Plan, shard_pairs: int) -> list[list[int]]:
    """Consecutive units grouped into shards of at least ``shard_pairs`` pairs (the last may be smaller).

    A unit with nothing to score counts as one pair, so shards of bad rows still close.
    """
    if shard_pairs < 1:
        raise ConfigError(f"shard_pairs must be >= 1, got {shard_pairs}")
    shards: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, unit in enumerate(plan.units):
        current.append(i)
        size += max(unit.pairs, 1)
        if size >= shard_pairs:
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    return shards


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ShardStore:
    """The shard folder of one output: its manifest, which shards are done, atomic writes."""

    def __init__(self, folder: Path, manifest: dict[str, Any], suffix: str, *, restart: bool = False) -> None:
        self.folder = folder
        self.suffix = suffix
        self.manifest = {"version": SHARD_VERSION, **manifest}
        found = self._existing()
        if found is not None and found != self.manifest:
            if not restart:
                changed = sorted(k for k in {*found, *self.manifest} if found.get(k) != self.manifest.get(k))
                raise ConfigError(
                    f"{folder} holds shards of another run (its manifest differs in {changed}); "
                    "delete the folder or rerun with --restart to start over"
                )
            shutil.rmtree(folder)
        elif found is not None and restart:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / MANIFEST).is_file():
            self._atomic(
                folder / MANIFEST, lambda p: p.write_text(json.dumps(self.manifest, indent=2) + "\n")
            )

    def _existing(self) -> dict[str, Any] | None:
        path = self.folder / MANIFEST
        if not path.is_file():
            if self.folder.exists() and any(self.folder.iterdir()):
                raise ConfigError(
                    f"{self.folder} exists without a {MANIFEST}: not a shard folder of this tool"
                )
            return None
        try:
            found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); delete the folder or use --restart") from exc
        return found

    def path(self, shard: int) -> Path:
        """The file of shard ``shard``."""
        return self.folder / f"shard-{shard:05d}{self.suffix}"

    def done(self, shard: int) -> bool:
        """True when the shard's file was written completely."""
        return self.path(shard).is_file()

    def pending(self, count: int) -> list[int]:
        """The shards among the first ``count`` that are not done yet."""
        return [k for k in range(count) if not self.done(k)]

    def write(self, shard: int, write: Callable[[Path], object]) -> Path:
        """Write a shard with ``write(path)`` into a temporary file, then rename it into place."""
        return self._atomic(self.path(shard), write)

    def paths(self, count: int) -> Sequence[Path]:
        """The files of the first ``count`` shards, in order."""
        return [self.path(k) for k in range(count)]

    @staticmethod
    def _atomic(target: Path, write: Callable[[Path], object]) -> Path:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            write(temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target
