"""Peer model folders for bench_local.py, made with the peers' own tools (run in the st-onnx venv).

    /work/bench-venvs/st-onnx/bin/python benchmarks/peers/prepare_models.py MODEL_FOLDER PEER_FOLDER

- ``st-onnx/``: the benchmark model exported by sentence-transformers (``backend="onnx"``,
  ``onnx/model.onnx``) and quantised by its own ``export_dynamic_quantized_onnx_model(model,
  "avx512_vnni", ...)`` (``onnx/model_qint8_avx512_vnni.onnx``);
- ``fastembed-float32/``, ``fastembed-int8/``: those two files as ``model.onnx`` beside the
  tokenizer files, with ``max_length`` and ``model_max_length`` set to 512 in
  ``tokenizer_config.json``: fastembed truncates every pair to the smaller of the two, and the
  packaged MiniLM's ``"max_length": 128`` would otherwise cut pairs to 128 tokens.
Idempotent: a folder already made is kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

MAX_LENGTH = 512
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def st_onnx(model: Path, target: Path) -> None:
    if (target / "onnx" / "model_qint8_avx512_vnni.onnx").is_file():
        return
    from sentence_transformers import CrossEncoder, export_dynamic_quantized_onnx_model

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model, tmp, ignore=shutil.ignore_patterns("onnx", "openvino"))
    encoder = CrossEncoder(str(tmp), backend="onnx", device="cpu")
    encoder.save_pretrained(str(tmp))
    export_dynamic_quantized_onnx_model(encoder, "avx512_vnni", str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def fastembed_folder(st_folder: Path, onnx_file: str, target: Path) -> None:
    if (target / "model.onnx").is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in (*TOKENIZER_FILES, "config.json"):
        if (st_folder / name).is_file():
            shutil.copy(st_folder / name, target / name)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config["max_length"] = config["model_max_length"] = MAX_LENGTH
    (target / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(st_folder / "onnx" / onnx_file, target / "model.onnx.tmp")
    (target / "model.onnx.tmp").rename(target / "model.onnx")


def main() -> None:
    model, peers = Path(sys.argv[1]), Path(sys.argv[2])
    peers.mkdir(parents=True, exist_ok=True)
    st_onnx(model, peers / "st-onnx")
    fastembed_folder(peers / "st-onnx", "model.onnx", peers / "fastembed-float32")
    fastembed_folder(peers / "st-onnx", "model_qint8_avx512_vnni.onnx", peers / "fastembed-int8")
    print(peers)


if __name__ == "__main__":
    main()
