"""The model runtime, owned by :class:`bot.embedding.Embedder` (nothing else imports this package).

``files``   the installed model's files: path, id, weights sha256, tokenizer and pooling config (no torch)
``onnx``    the default query runtime: ONNX Runtime + ``tokenizers`` (no torch, transformers or
            sentence-transformers)
``torch``   the sentence-transformers encoder (``FAQBOT_RUNTIME=torch``; and the reference at export)
``export``  the one-time ONNX export from the installed weights, verified against torch
``batcher`` micro-batching of concurrent callers, fair and failure-isolated
"""
