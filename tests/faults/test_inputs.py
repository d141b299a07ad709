"""Group 8 (the pipeline's inputs) and frozen configs: no silent wrong answer from a bad setting."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import core
from core import ConfigError, InvalidInputError, create_reranker
from core.cli import main
from core.evaluation import evaluate, load_beir
from tests.support.beir_files import write_beir
from tests.support.toy_rerankers import OverlapReranker, ScriptedReranker

QUERY = "red apple"
TEXTS = ["pear", "red apple", "apple pie"]


class RecordingReranker(OverlapReranker):
    """Word-overlap scores; keeps the texts it was asked to score."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.seen = list(texts)
        return super().score(query, texts)


# --- score_threshold and top_k ------------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, "0.5", True, [0.5]])
async def test_a_bad_score_threshold_in_a_call_is_refused_before_any_scoring(value: Any) -> None:
    reranker = OverlapReranker()
    calls = [
        lambda: reranker.rank(QUERY, TEXTS, score_threshold=value),
        lambda: reranker.rerank(QUERY, TEXTS, score_threshold=value),
        lambda: reranker.rerank(QUERY, [], score_threshold=value),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=r"score_threshold must be a finite number or None"):
            call()
    with pytest.raises(InvalidInputError, match="score_threshold"):
        await reranker.arerank(QUERY, TEXTS, score_threshold=value)
    assert reranker.calls == 0


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"score_threshold": math.nan}, "score_threshold"),
        ({"score_threshold": "0.5"}, "score_threshold"),
        ({"score_threshold": True}, "score_threshold"),
        ({"top_k": True}, "top_k"),
        ({"top_k": "3"}, "top_k"),
        ({"top_k": 2.0}, "top_k"),
    ],
)
def test_a_bad_threshold_or_top_k_in_a_config_is_refused_naming_the_field(
    config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=rf"invalid RerankerConfig: {field}: "):
        OverlapReranker(config)
    # while an int threshold and a real top_k are fine
    assert [d["text"] for d in OverlapReranker(score_threshold=1).rerank(QUERY, TEXTS)] == ["red apple"]
    assert len(OverlapReranker(top_k=2).rerank(QUERY, TEXTS, score_threshold=0)) == 2


# --- frozen configs ---------------------------------------------------------------------------------
def test_a_setting_changed_after_construction_is_refused_with_a_clear_error() -> None:
    reranker = OverlapReranker(top_k=1)
    with pytest.raises(
        ConfigError, match=r"RerankerConfig is frozen: 'top_k' cannot change.*Build a new reranker"
    ):
        reranker.config.top_k = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="frozen"):
        reranker.config.model = "another"  # type: ignore[misc]
    assert reranker.config.top_k == 1 and len(reranker.rerank(QUERY, TEXTS)) == 1
    rebuilt = type(reranker)(reranker.config, top_k=3)  # the documented way to change a setting
    assert rebuilt.config.top_k == 3 and len(rebuilt.rerank(QUERY, TEXTS)) == 3


# --- dict documents without a text key ----------------------------------------------------------------
def test_page_content_is_read_and_a_dict_without_a_text_key_warns_once_per_reranker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    docs: list[Any] = [{"id": 1, "page_content": "pear"}, {"id": 2, "title": "red apple"}, "apple pie"]
    reranker = RecordingReranker()
    with caplog.at_level(logging.WARNING, logger="rerank_layer"):
        out = reranker.rerank(QUERY, docs)
        reranker.rerank(QUERY, docs)
    assert reranker.seen[0] == "pear"  # LangChain's page_content, not str(dict)
    assert reranker.seen[1] == str(docs[1])
    assert [row["id"] if isinstance(row.get("id"), int) else row["text"] for row in out] == [
        2,
        "apple pie",
        1,
    ]
    warnings = [r.getMessage() for r in caplog.records if r.name == "rerank_layer"]
    assert len(warnings) == 1, warnings
    assert "documents[1]" in warnings[0] and "text_key" in warnings[0] and "page_content" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rerank_layer"):
        RecordingReranker().rerank(QUERY, docs)  # another reranker is warned too
    assert len(caplog.records) == 1


# --- eval splits ------------------------------------------------------------------------------------
def test_eval_never_reads_another_split_and_the_report_names_split_and_qrels(
    tmp_path: Path, capsys: Any
) -> None:
    data = write_beir(tmp_path / "toy", split="test")
    with pytest.raises(
        InvalidInputError, match=r"no qrels/dev\.tsv for split 'dev'; qrels/ holds \['test\.tsv'\]"
    ):
        load_beir(data, split="dev")
    assert main(["eval", str(data), "--split", "dev", "--no-progress"]) == 2
    assert "no qrels/dev.tsv for split 'dev'" in capsys.readouterr().err

    report = evaluate(data, ScriptedReranker({"Paris": 1.0}), split="test", top_n=3, progress=False)
    summary = report.to_dict(per_query=False)
    assert summary["split"] == "test" and summary["qrels"] == str(data / "qrels" / "test.tsv")
    assert f"split test from {data / 'qrels' / 'test.tsv'}" in report.format_table()
    named = evaluate(
        data, ScriptedReranker({}), qrels_file=data / "qrels" / "test.tsv", top_n=3, progress=False
    )
    assert named.to_dict()["split"] is None and named.to_dict()["qrels"] == str(data / "qrels" / "test.tsv")


# --- num_threads on a cached model --------------------------------------------------------------------
def test_another_num_threads_on_a_loaded_model_is_refused_not_silently_ignored(
    tiny_cross_encoder: Path,
) -> None:
    import torch

    before = torch.get_num_threads()
    core.clear_model_cache()

    def hf(threads: int | None) -> Any:
        config = {"model": str(tiny_cross_encoder), "num_threads": threads, "on_error": "raise"}
        config["backend"] = "torch"  # PyTorch's process-wide count (auto may pick OpenVINO)
        return create_reranker({"provider": "huggingface", "config": config})

    try:
        first, second, default = hf(1), hf(2), hf(None)
        assert first.rerank("capital city", ["paris", "rain"]).error is None
        assert torch.get_num_threads() == 1
        with pytest.raises(ConfigError, match=r"num_threads=2 .*runs PyTorch with num_threads=1"):
            second.rerank("capital city", ["paris", "rain"])
        assert default.rerank("capital city", ["paris", "rain"]).error is None  # None takes what is in use
        assert torch.get_num_threads() == 1
        core.clear_model_cache()  # the first reranker's model is gone: the new setting takes effect
        assert second.rerank("capital city", ["paris", "rain"]).error is None
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        core.clear_model_cache()
