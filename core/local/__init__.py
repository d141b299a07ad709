"""The local rerankers' fast path: precision, threads, batching, long-document windows, ONNX.

Shared by the ``huggingface`` and ``sentence_transformer`` providers; nothing here is a provider.
"""
