"""The MTL-GCN label graph: node features and adjacency (Spearman |rho|, binarised, p re-weighted).

Nodes are the C expression classes followed by Valence and Arousal. Only expression-VA and V-A edges
exist: expression-expression edges are removed, as in the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from affectstream.training.errors import ConfigError, DataError

DIM_NODES = ("Valence", "Arousal")
# How the GCN propagates over the re-weighted matrix A (rows sum to 1):
#   formula: H' = A H, the ML-GCN formula as written: each class gathers from valence/arousal.
#   authors: H' = A^T H, what the authors' released code computes (their row-normalised A goes through
#            ML-GCN's gen_adj, (A D)^T D with D = I): valence/arousal gather from the classes.
ORIENTATIONS = ("formula", "authors")


def spearman_rho(onehot: np.ndarray, va: np.ndarray) -> dict[str, np.ndarray]:
    """Spearman rho of each one-hot expression column with valence and arousal, and V with A.

    Args:
        onehot: [N, C] 0/1 expression indicators.
        va: [N, 2] valence and arousal.

    Returns:
        {"expr_va": [C, 2] rho, "va": scalar rho between valence and arousal}.
    """
    from scipy.stats import spearmanr

    expr_va = np.zeros((onehot.shape[1], 2))
    for c in range(onehot.shape[1]):
        for d in range(2):
            if onehot[:, c].std() == 0 or va[:, d].std() == 0:
                continue  # a constant column has no rank correlation; leave it at 0 (no edge)
            expr_va[c, d] = spearmanr(onehot[:, c], va[:, d]).statistic
    rho_va = spearmanr(va[:, 0], va[:, 1]).statistic if va[:, 0].std() and va[:, 1].std() else 0.0
    return {"expr_va": expr_va, "va": np.float64(rho_va)}


def adjacency(expr_va: np.ndarray, rho_va: float, tau: float = 0.1, p: float = 0.5) -> np.ndarray:
    """Re-weighted adjacency of the C + 2 node graph.

    Binarise |rho| at tau, drop expression-expression edges, then re-weight each row so the node keeps
    1 - p for itself and its neighbours share p equally (a node without neighbours keeps weight 1).

    Args:
        expr_va: [C, 2] rho of expression vs valence/arousal.
        rho_va: rho between valence and arousal.
        tau: Binarisation threshold on |rho|.
        p: Total neighbour weight.

    Returns:
        [C + 2, C + 2] float32 matrix; rows sum to 1.
    """
    c = expr_va.shape[0]
    edges = np.zeros((c + 2, c + 2))
    strong = (np.abs(expr_va) >= tau).astype(float)
    edges[:c, c:] = strong
    edges[c:, :c] = strong.T
    if abs(rho_va) >= tau:
        edges[c, c + 1] = edges[c + 1, c] = 1.0
    adj = np.eye(c + 2)
    degree = edges.sum(1)
    for i in range(c + 2):
        if degree[i] > 0:
            adj[i] = edges[i] * (p / degree[i])
            adj[i, i] = 1.0 - p
    return adj.astype(np.float32)


def propagation_matrix(adj: np.ndarray, orientation: str) -> np.ndarray:
    """The matrix the GCN multiplies node features by: ``adj`` ("formula") or its transpose ("authors")."""
    if orientation not in ORIENTATIONS:
        raise ConfigError(
            f"graph.orientation: {orientation!r} is not allowed; allowed values: {ORIENTATIONS}"
        )
    return np.ascontiguousarray(adj.T if orientation == "authors" else adj)


def load_rho(path: str | Path, labels: tuple[str, ...]) -> tuple[np.ndarray, float]:
    """Read a rho file (``{"expr_va": {label: [rho_v, rho_a]}, "va": rho}``) in the given label order."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read graph statistics {path}: {exc}") from exc
    missing = [name for name in labels if name not in raw["expr_va"]]
    if missing:
        raise ConfigError(f"{path} has no rho for {missing}; it covers {sorted(raw['expr_va'])}")
    return np.array([raw["expr_va"][n] for n in labels], dtype=np.float64), float(raw["va"])


def load_embeddings(path: str | Path, labels: tuple[str, ...]) -> np.ndarray:
    """[C + 2, D] node features: the label-name embeddings followed by Valence and Arousal."""
    path = Path(path)
    try:
        vectors = json.loads(path.read_text())["vectors"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read label embeddings {path}: {exc}") from exc
    names = list(labels) + list(DIM_NODES)
    missing = [n for n in names if n not in vectors]
    if missing:
        raise ConfigError(f"{path} has no embedding for {missing}; run `python -m training.embed_labels`")
    return np.array([vectors[n] for n in names], dtype=np.float32)
