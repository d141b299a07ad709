"""Decoder rerankers on the fast path: causal LMs scored from their yes/no logits, decoder classifiers.

Pairs are tokenised once (``PromptEncoder``), run in length-sorted batches padded on the left,
with explicit position ids and ``use_cache=False``. Only the last position's hidden state goes
through a head: the two vocabulary rows of the yes/no tokens (a 150k-token vocabulary is never
projected), or a decoder classifier's own trained head.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.deps import require
from core.errors import ConfigError
from core.local.batching import iter_padded_batches, progress_bar
from core.local.checkpoints import Checkpoint, refuse_missing_weights
from core.local.cross_encoder import model_length_limit
from core.local.models import cached_model, resolve_device, resolve_model_name
from core.local.options import LOCAL, LocalRerankerConfig
from core.local.precision import resolve_precision
from core.local.prompt_options import LocalPromptConfig
from core.local.prompting import PromptEncoder, PromptSpec, resolve_prompt
from core.local.threads import apply_torch_threads
from core.local.tokenizing import LockedTokenizer, TokenEncoder
from core.local.windows import best_per_document, room_beside_query, split_documents


def decoder_precision(requested: str, device: str) -> str:
    """``resolve_precision`` for a decoder, but bfloat16 on a CUDA GPU that has it.

    These models are trained in bf16; float16's narrower range can overflow in their activations.
    """
    precision = resolve_precision(requested, device, "torch")
    if requested == "auto" and device.startswith("cuda"):
        torch = require("torch", extra="local", provider=LOCAL)
        if torch.cuda.is_bf16_supported():
            return "bfloat16"
    return precision


class DecoderRuntime:
    """Tokenizer, decoder body and head of one decoder checkpoint, loaded once per process and key.

    ``kind`` is the checkpoint's: ``causal_lm`` (scored by ``PromptSpec``'s yes/no tokens) or
    ``decoder_classifier`` (scored by its sequence-classification head at the last token).
    """

    def __init__(
        self, model: str, device: str, precision: str, kind: str, trust_remote_code: bool, threads: int | None
    ) -> None:
        self.torch = require("torch", extra="local", provider=LOCAL)
        transformers = require("transformers", extra="local", provider=LOCAL)
        self.name, self.device, self.precision, self.kind = model, device, precision, kind
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        self.tokenizer = LockedTokenizer(tokenizer)
        self.token_encoder = TokenEncoder(tokenizer)
        self.length_limit = model_length_limit(tokenizer, config)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_values = {"input_ids": int(pad or 0)}
        apply_torch_threads(threads)
        auto = (
            transformers.AutoModelForCausalLM
            if kind == "causal_lm"
            else transformers.AutoModelForSequenceClassification
        )
        try:
            loaded, info = auto.from_pretrained(
                model,
                dtype=getattr(self.torch, precision),
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
            )
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        refuse_missing_weights(model, info, type(loaded).__name__)
        self.model = loaded.to(device).eval()
        if self.model.config.pad_token_id is None:  # what its own forward pools by, if called directly
            self.model.config.pad_token_id = self.pad_values["input_ids"]
        self.body = self.model.base_model
        if self.body is self.model:
            raise ConfigError(f"model {model!r} ({type(loaded).__name__}) exposes no decoder body to run")
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        self.softcap = getattr(text_config, "final_logit_softcapping", None)
        head = (
            self.model.get_output_embeddings() if kind == "causal_lm" else getattr(self.model, "score", None)
        )
        if not isinstance(head, self.torch.nn.Linear):
            raise ConfigError(
                f"model {model!r} ({type(loaded).__name__}) has no linear output head to score with"
            )
        self.head: Any = head
        self.num_labels = int(head.out_features) if kind == "decoder_classifier" else 0
        if kind == "decoder_classifier" and self.num_labels not in (1, 2):
            raise ConfigError(
                f"model {model!r} has {self.num_labels} labels; a reranker needs a 1- or 2-logit head"
            )
        self._encoders: dict[PromptSpec, PromptEncoder] = {}
        self._lock = threading.Lock()

    def max_length(self, requested: int | None) -> int:
        """``requested`` tokens per pair, capped at the model's limit (the limit when None)."""
        return self.length_limit if requested is None else min(requested, self.length_limit)

    def prompt_encoder(self, spec: PromptSpec) -> PromptEncoder:
        """The encoder of ``spec`` for this tokenizer (built once per spec)."""
        with self._lock:
            if spec not in self._encoders:
                self._encoders[spec] = PromptEncoder(spec, self.tokenizer, self.token_encoder)
            return self._encoders[spec]

    def encode(self, spec: PromptSpec | None, query: str, texts: Sequence[str], max_length: int) -> Any:
        """Unpadded ``input_ids`` of every pair: the prompt, or the tokenizer's own pair encoding."""
        if spec is None:
            return {
                "input_ids": self.token_encoder([query] * len(texts), list(texts), max_length)["input_ids"]
            }
        return self.prompt_encoder(spec).encode(query, texts, max_length)

    def document_room(self, spec: PromptSpec | None, query: str, max_length: int) -> int:
        """Tokens of document text that fit beside the prompt and ``query``."""
        if spec is None:
            return room_beside_query(self.tokenizer, query, max_length)
        return self.prompt_encoder(spec).document_room(query, max_length)

    def last_hidden(self, batch: dict[str, np.ndarray]) -> Any:
        """The final hidden state at the last position of each left-padded row."""
        torch = self.torch
        ids = torch.from_numpy(batch["input_ids"]).to(self.device)
        mask = torch.from_numpy(batch["attention_mask"]).to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row counts from its first real token
        out = self.body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)
        return out.last_hidden_state[:, -1]

    def head_scores(self, hidden: Any, spec: PromptSpec | None) -> np.ndarray:
        """Raw scores from last-position hidden states: yes/no log-odds (or yes logit), or the head's."""
        torch = self.torch
        if self.kind == "decoder_classifier":
            logits = self.head(hidden).float()
            relevance = logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]
            return np.asarray(relevance.cpu().numpy(), dtype=np.float32)
        assert spec is not None, "a causal LM always has a prompt"
        encoder = self.prompt_encoder(spec)
        rows = [encoder.yes_id] if encoder.no_id is None else [encoder.yes_id, encoder.no_id]
        index = torch.tensor(rows, device=hidden.device)
        weight = self.head.weight.index_select(0, index).float()
        logits = hidden.float() @ weight.T
        if self.head.bias is not None:
            logits = logits + self.head.bias.index_select(0, index).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        relevance = logits[:, 0] if encoder.no_id is None else logits[:, 0] - logits[:, 1]
        return np.asarray((relevance * spec.score_scale).cpu().numpy(), dtype=np.float32)

    def score(
        self,
        spec: PromptSpec | None,
        query: str,
        texts: Sequence[str],
        max_length: int,
        batch_size: int,
        progress: Any,
    ) -> list[float]:
        """Raw scores of every pair: tokenised once, run in length-sorted, left-padded batches."""
        scores = np.empty(len(texts), dtype=np.float32)
        features = self.encode(spec, query, texts, max_length)
        with self.torch.inference_mode():
            for indices, batch in iter_padded_batches(
                features, batch_size, self.pad_values, "left", progress
            ):
                scores[indices] = self.head_scores(self.last_hidden(batch), spec)
        return [float(s) for s in scores]

    def warmup(self, spec: PromptSpec | None) -> None:
        """Run one tiny batch so the first real call pays no kernel set-up."""
        self.score(spec, "warm up", ["warm up"], self.max_length(None), 1, None)


def load_decoder(config: LocalRerankerConfig, checkpoint: Checkpoint) -> DecoderRuntime:
    """The process-wide runtime for ``config``'s decoder checkpoint (torch backend only)."""
    if config.backend not in ("auto", "torch"):  # auto: decoders run on PyTorch
        raise ConfigError(
            f"backend={config.backend!r} is not available for LLM rerankers (decoder checkpoints such as "
            f"{checkpoint.name!r}); use backend='torch'"
        )
    model, device = resolve_model_name(checkpoint.name), resolve_device(config.device)
    precision = decoder_precision(config.dtype, device)
    key = ("decoder", model, device, precision, checkpoint.kind, config.trust_remote_code)
    return cached_model(
        key,
        lambda: DecoderRuntime(
            model, device, precision, checkpoint.kind, config.trust_remote_code, config.num_threads
        ),
    )


def score_decoder_pairs(
    runtime: DecoderRuntime,
    spec: PromptSpec | None,
    query: str,
    texts: Sequence[str],
    config: LocalRerankerConfig,
    max_length: int | None,
) -> list[float]:
    """Raw scores of ``texts`` for ``query``; with ``long_documents="windows"`` each text's best window."""
    length = runtime.max_length(max_length)
    progress = progress_bar(config.show_progress_bar)
    if config.long_documents == "truncate":
        return runtime.score(spec, query, texts, length, config.batch_size, progress)
    room = runtime.document_room(spec, query, length)
    plan = split_documents(runtime.tokenizer, texts, room, config.window_overlap, config.max_windows_per_doc)
    scores = runtime.score(spec, query, plan.texts, length, config.batch_size, progress)
    return best_per_document(scores, plan.owners, len(texts))


class DecoderScorer:
    """One reranker's use of a decoder checkpoint: the shared runtime and this config's prompt."""

    def __init__(self, config: LocalPromptConfig, checkpoint: Checkpoint, max_length: int | None) -> None:
        self.config, self.checkpoint, self.max_length = config, checkpoint, max_length
        self.spec = resolve_prompt(checkpoint, config)

    @property
    def runtime(self) -> DecoderRuntime:
        """The loaded model (loaded on first use, once per process and key)."""
        return load_decoder(self.config, self.checkpoint)

    @property
    def model(self) -> Any:
        """The loaded PyTorch model."""
        return self.runtime.model

    def warmup(self) -> None:
        """Load the model and run one tiny batch."""
        self.runtime.warmup(self.spec)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw scores of ``texts`` for ``query`` (see ``score_decoder_pairs``)."""
        return score_decoder_pairs(self.runtime, self.spec, query, texts, self.config, self.max_length)
