"""The two ways a batch runs: a PyTorch module or an ONNX Runtime session. Both return numpy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.deps import require
from core.local.options import LOCAL, ONNX

#: A padded batch in, one output row per input out (float32).
Forward = Callable[[Mapping[str, np.ndarray]], np.ndarray]


#: How a module is called on named input tensors and which tensor of its output is kept.
ModuleCall = Callable[[Any, dict[str, Any]], Any]


class TorchForward:
    """Runs ``call(model, tensors)`` under ``inference_mode`` and returns the result as float32 numpy."""

    def __init__(self, model: Any, device: str, call: ModuleCall) -> None:
        self.torch = require("torch", extra="local", provider=LOCAL)
        self.model = model
        self.device = device
        self.call = call

    def __call__(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Output rows for one padded batch."""
        tensors = {name: self.torch.from_numpy(array).to(self.device) for name, array in batch.items()}
        with self.torch.inference_mode():
            out = self.call(self.model, tensors)
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)


class OnnxForward:
    """An ONNX Runtime session on the CPU (or CUDA when asked for and available)."""

    def __init__(self, path: Path, device: str, threads: int) -> None:
        ort = require("onnxruntime", extra="onnx", provider=ONNX)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_mem_pattern = False  # shapes change every batch: planned patterns only grow memory
        # Workers stop spinning when a run returns, so between batches and calls they leave the
        # cores to the tokenizer and the application (the next run wakes them; no slower here).
        options.add_session_config_entry("session.force_spinning_stop", "1")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        """Output rows for one padded batch (inputs the graph does not take are left out)."""
        out = self.session.run(None, {name: batch[name] for name in self.inputs})[0]
        return np.asarray(out, dtype=np.float32)


def positional_module(model: Any, names: list[str], call: ModuleCall) -> Any:
    """A ``torch.nn.Module`` taking ``names`` positionally and returning ``call(model, inputs)``.

    The ONNX exporter passes inputs by position; this keeps every model's keyword names.
    """
    torch = require("torch", extra="local", provider=ONNX)

    class Positional(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors: Any) -> Any:
            return call(self.inner, dict(zip(names, tensors, strict=True)))

    return Positional().eval()
