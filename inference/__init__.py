"""Model clients: chat completions and embeddings over OpenAI-compatible APIs, and the
embedded model server. Plain Python: nothing here imports Django."""
