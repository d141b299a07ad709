"""The OpenVINO backend: the ONNX export run by OpenVINO, and static int8 calibrated with NNCF.

``dtype="int8"`` quantises the float32 ONNX export once with NNCF (transformer preset: activation
smoothing, per-channel int8 weights, activations quantised with ranges measured on the shipped
calibration pairs, fast bias correction; the head and the attention products left out, see
:func:`float_nodes`) and caches the OpenVINO IR beside the ONNX file; everything left
unquantised runs in bfloat16 on a CPU with native bf16, float32 elsewhere.
``bfloat16`` and ``float32`` run the ONNX export as it is, with that inference precision.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.deps import require
from core.errors import ConfigError
from core.local.options import OPENVINO

logger = logging.getLogger("rerank_layer")

#: Bumped whenever the quantisation recipe changes (part of the cached file's name).
RECIPE = "ov2"
#: OpenVINO's name for each precision the backend runs at.
INFERENCE_PRECISION = {"float32": "f32", "bfloat16": "bf16"}

#: Calibration inputs: one padded batch (numpy arrays by input name) per calibration item.
CalibrationFactory = Callable[[], list[dict[str, np.ndarray]]]


def openvino_path(onnx_file: Path) -> Path:
    """The cached int8 IR (``.xml``, weights in the ``.bin`` beside it) for a float32 ONNX export."""
    stem = onnx_file.name.removesuffix(".onnx").replace(".float32.", ".int8-static.")
    return onnx_file.with_name(f"{stem}.{RECIPE}.xml")


def ensure_int8_ir(onnx_file: Path, calibration: CalibrationFactory) -> Path:
    """Return the cached int8 IR of ``onnx_file``, quantising it first if missing."""
    ov = require("openvino", extra="openvino", provider=OPENVINO)
    nncf = require("nncf", extra="openvino", provider=OPENVINO)
    target = openvino_path(onnx_file)
    if target.is_file() and target.with_suffix(".bin").is_file():
        return target
    logger.info("quantising %s to int8 with NNCF (once; cached as %s)", onnx_file.name, target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".openvino-") as tmp, _quiet(nncf):
        try:
            model = ov.Core().read_model(str(onnx_file))
            quantized = nncf.quantize(
                model,
                nncf.Dataset(calibration()),
                model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=1_000_000,  # every calibration item
                ignored_scope=nncf.IgnoredScope(names=float_nodes(model), validate=False),
            )
        except Exception as exc:
            raise ConfigError(f"cannot quantise {onnx_file.name} with NNCF: {exc}") from exc
        staged = Path(tmp) / target.name
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        # The weights first, the graph last: a reader that finds the .xml finds its .bin.
        os.replace(staged.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(staged, target)
    return target


def float_nodes(model: Any) -> list[str]:
    """The matrix products static int8 leaves in bf16 (float32 without native bf16).

    - The head: what the ONNX export wrote as ``Gemm`` (the pooler and classifier, on one vector
      per pair). int8 saves nothing there, and rounding that vector moves every score: on a
      MiniLM cross-encoder, keeping it lowered the RMS score error from 0.18 to 0.13 of the
      logits' spread across a query's candidates.
    - Products of two activations (attention scores, attention-weighted values): little compute
      at reranking lengths, and per-tensor ranges fit them badly.
    """
    names = []
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        sources = {op.input_value(i).get_node().get_type_name() for i in range(op.get_input_size())}
        if "Gemm" in op.get_friendly_name() or "Constant" not in sources:
            names.append(op.get_friendly_name())
    return names


@contextlib.contextmanager
def _quiet(nncf: object) -> Iterator[None]:
    """NNCF logs each step and draws progress bars: keep a one-off quantisation silent."""
    nncf_logger = logging.getLogger("nncf")
    level, previous = nncf_logger.level, logging.root.manager.disable
    nncf_logger.setLevel(logging.ERROR)
    logging.disable(logging.WARNING)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        nncf_logger.setLevel(level)
        logging.disable(previous)


#: The most pairs per OpenVINO forward pass on the CPU: batches of 16 MiniLM pairs ran 1.04-1.21x
#: batches of 32 (docs/performance.md); ``batch_size`` caps it further.
OPENVINO_MAX_BATCH = 16
#: The most streams a cross-encoder is split into (measured on 2 cores only: 2 streams of one
#: thread ran 0.97-1.17x one stream of two at equal batch sizes).
MAX_STREAMS = 4


def stream_count(threads: int) -> int:
    """Streams for ``threads``: one thread each, at most :data:`MAX_STREAMS`."""
    return max(1, min(threads, MAX_STREAMS))


class OpenVinoForward:
    """An OpenVINO model compiled for the CPU: padded batches in, float32 output rows out.

    With ``streams`` > 1 the threads are split into that many streams and :meth:`run_batches`
    keeps one batch in flight per stream, each on its own cores (no barrier across all threads
    after every operation); a single batch through ``__call__`` runs on one stream.
    """

    def __init__(self, path: Path, threads: int, inference_precision: str, streams: int = 1) -> None:
        self.ov = require("openvino", extra="openvino", provider=OPENVINO)
        core = self.ov.Core()
        self.streams = max(1, min(streams, threads))
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": self.streams,
            "PERFORMANCE_HINT": "LATENCY" if self.streams == 1 else "THROUGHPUT",
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[inference_precision],
        }
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as exc:
            raise ConfigError(f"OpenVINO cannot load {path.name}: {exc}") from exc
        self.path = path
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self._request = self.compiled.create_infer_request()
        self._queue: Any = None
        self._lock = threading.Lock()  # one request (or queue), reused: calls take turns

    def __call__(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Output rows for one padded batch (inputs the graph does not take are left out)."""
        with self._lock:
            out = self._request.infer({name: batch[name] for name in self.inputs})
            return np.array(out[0], dtype=np.float32)  # a copy: the request reuses its buffer

    def batch_size(self, pairs: int, requested: int) -> int:
        """Pairs per pass for a call of ``pairs``: at most ``requested`` and
        :data:`OPENVINO_MAX_BATCH`, and small enough to give every stream a batch."""
        return max(1, min(requested, OPENVINO_MAX_BATCH, -(-pairs // self.streams)))

    def run_batches(
        self, batches: Iterable[tuple[list[int], Mapping[str, np.ndarray]]]
    ) -> list[tuple[list[int], np.ndarray]]:
        """(positions, output rows) of every batch, up to ``streams`` batches in flight at once."""
        if self.streams == 1:
            return [(indices, self(batch)) for indices, batch in batches]
        done: list[tuple[list[int], np.ndarray]] = []

        def finished(request: Any, indices: list[int]) -> None:
            done.append((indices, np.array(request.get_output_tensor(0).data, dtype=np.float32)))

        with self._lock:
            if self._queue is None:
                self._queue = self.ov.AsyncInferQueue(self.compiled, self.streams)
            self._queue.set_callback(finished)
            started = 0
            try:
                for indices, batch in batches:
                    self._queue.start_async({name: batch[name] for name in self.inputs}, indices)
                    started += 1
            finally:  # nothing left running when the lock is released, even on an error
                self._queue.wait_all()
        if len(done) != started:  # never hand back positions that were not scored
            raise RuntimeError(f"OpenVINO finished {len(done)} of {started} batches")
        return done
