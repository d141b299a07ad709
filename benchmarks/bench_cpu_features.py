"""Which local configuration wins on which CPU features: this CPU, and older ones emulated.

    flock /work/bench.lock .venv/bin/python benchmarks/bench_cpu_features.py

Emulation caps the kernels the libraries may use: ``ONEDNN_MAX_CPU_ISA`` for oneDNN (PyTorch and
OpenVINO both honour it: OpenVINO then runs its int8 layers with AVX2 ``jit_gemm`` kernels instead
of AVX-512 VNNI ``brgemm``), ``ATEN_CPU_CAPABILITY`` for PyTorch's own kernels, and
``RERANK_LAYER_CPU_FLAGS`` for the layer's own ``auto`` policy (so bf16 is not picked where the
emulated CPU has none). ONNX Runtime's MLAS kernels cannot be capped, so ONNX configurations run
only on this CPU as it is. Each configuration is its own worker process (benchmarks/peers/worker.py);
the configurations of one CPU class run interleaved, 100 candidates, rounds rotated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_local import Worker, local_inputs

#: CPU class -> (environment that emulates it, flags the auto policy sees; None = this CPU).
CPUS: dict[str, dict[str, str]] = {
    "this CPU (AVX-512 VNNI + BF16)": {},
    "AVX-512 VNNI, no BF16 (e.g. Cascade Lake, Ice Lake)": {
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI",
        "RERANK_LAYER_CPU_FLAGS": "avx2 fma avx512f avx512bw avx512_vnni",
    },
    "AVX2 only (e.g. Haswell, Zen 2)": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "RERANK_LAYER_CPU_FLAGS": "avx2 fma",
    },
}
#: Configuration label -> huggingface provider config.
CONFIGS: dict[str, dict[str, object]] = {
    "auto, openvino extra installed": {"batch_size": 16},
    "auto, local extra only (torch)": {"backend": "torch"},
    "openvino int8": {"backend": "openvino", "dtype": "int8", "batch_size": 16},
    "openvino float32": {"backend": "openvino", "dtype": "float32", "batch_size": 16},
    "torch float32": {"backend": "torch", "dtype": "float32"},
    "onnx int8 (this CPU only)": {"backend": "onnx", "dtype": "int8", "batch_size": 16},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = local_inputs.build_model()
    query, texts = local_inputs.benchmark_query(), local_inputs.passages(args.size)
    report: dict[str, dict[str, float]] = {}
    for cpu, env in CPUS.items():
        configs = {k: v for k, v in CONFIGS.items() if not (env and k.startswith("onnx"))}
        workers = {
            label: Worker(f"rerank-layer {json.dumps(config)}", model, env)
            for label, config in configs.items()
        }
        seconds: dict[str, list[float]] = {label: [] for label in workers}
        try:
            for worker in workers.values():
                worker.rank(query, texts[:8])
            names = list(workers)
            for rep in range(args.repeats):
                for label in names[rep % len(names) :] + names[: rep % len(names)]:
                    time.sleep(0.2)
                    seconds[label].append(workers[label].rank(query, texts))
        finally:
            for worker in workers.values():
                worker.close()
        rates = {label: args.size / statistics.median(s) for label, s in seconds.items()}
        top = max(rates.values())
        print(f"\n{cpu}: pairs/s at {args.size} candidates (median of {args.repeats}), ratio to the fastest")
        for label, rate in sorted(rates.items(), key=lambda item: -item[1]):
            print(f"  {label:36} {rate:7.1f} {rate / top:6.2f}")
        report[cpu] = rates
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
