"""Label graph: the paper's adjacency rules, node features, Spearman statistics."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.training.graph import adjacency, load_embeddings, load_rho, spearman_rho
from affectstream.training.labels import get_label_set
from tests.training.conftest import REPO


def test_paper_graph_for_affectnet7():
    labels = get_label_set("affectnet7").labels
    expr_va, rho_va = load_rho(REPO / "configs/graph/affectnet_paper_rho.json", labels)
    adj = adjacency(expr_va, rho_va, tau=0.1, p=0.5)
    v, a = 7, 8
    assert adj.shape == (9, 9)
    np.testing.assert_allclose(adj.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.diag(adj), 0.5)  # every node has a neighbour here
    assert np.all(adj[:7, :7] == np.diag(np.diag(adj[:7, :7])))  # no expression-expression edges
    happy, surprise, neutral = labels.index("Happy"), labels.index("Surprise"), labels.index("Neutral")
    # Happy: |0.861| >= 0.1 with valence, |0.014| < 0.1 with arousal -> one neighbour, weight 0.5
    assert adj[happy, v] == 0.5 and adj[happy, a] == 0.0
    assert adj[surprise, v] == 0.0 and adj[surprise, a] == 0.5
    assert adj[neutral, v] == adj[neutral, a] == 0.25
    assert adj[v, a] == 0.0  # rho(V, A) = 0.037 < tau
    # valence links to the 6 classes with |rho_v| >= 0.1 (all but Surprise): 0.5 / 6 each
    assert adj[v, :7].tolist() == pytest.approx([0.5 / 6 if i != surprise else 0.0 for i in range(7)])


def test_isolated_node_keeps_itself():
    adj = adjacency(np.array([[0.05, 0.0], [0.3, 0.0]]), 0.5)
    assert adj[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert adj[2, 3] == pytest.approx(0.5 / 2)  # valence: neighbours class 1 and arousal


def test_embeddings_cover_every_label_set():
    for name in ("affectnet7", "affectnet8", "ferplus8", "affwild2_8"):
        labels = get_label_set(name).labels
        emb = load_embeddings(REPO / "configs/graph/label_embeddings.json", labels)
        assert emb.shape == (len(labels) + 2, 384)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_spearman_by_hand():
    onehot = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    va = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.3], [0.2, 0.4]])
    rho = spearman_rho(onehot, va)
    # class 0 holds the two highest valences: ranks agree perfectly up to ties
    assert rho["expr_va"][0, 0] == pytest.approx(np.corrcoef([1.5 * 2, 3, 1, 1], [4, 3, 1, 2])[0, 1])
    assert rho["expr_va"][1, 0] == pytest.approx(-rho["expr_va"][0, 0])
    assert rho["va"] == pytest.approx(-0.8)


def test_unknown_label_set_lists_choices():
    from affectstream.training.errors import ConfigError

    with pytest.raises(ConfigError, match="ferplus8"):
        get_label_set("nope")
