"""Hosted rerank APIs (Cohere, ZeroEntropy) on one shared base: chunking, retries, deadlines."""
