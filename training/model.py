"""MTL-GCN and its ablation baselines: a timm backbone split from a head that can be swapped.

Heads:
    linear: single-task, one linear classifier (no valence/arousal).
    multitask: linear expression head plus linear valence/arousal head.
    mtlgcn: the paper's graph head: a two-layer GCN over label-name embeddings produces one weight vector
        per node (C expressions + valence + arousal); outputs = image feature . node weights.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np
import torch
from torch import nn

from affectstream.settings.typed import typed
from affectstream.training.errors import ConfigError

HEADS = ("linear", "multitask", "mtlgcn")


@typed(ConfigError)
class ModelConfig:
    """What builds a model; saved in every checkpoint so it rebuilds without the recipe."""

    head: str = "mtlgcn"
    backbone: str = "resnet18"
    in_chans: int = 1
    num_classes: int = 8
    global_pool: str = "avg"
    drop_rate: float = 0.0
    gcn_hidden: int = 512
    # Extra timm create_model arguments, e.g. {"channels": [32, 64, 128, 256]} for a half-width ResNet.
    backbone_args: dict[str, Any] = field(default_factory=dict)
    # False drops a ResNet's stem max-pool: at 48 px the stock /4 stem leaves stage 1 only 12x12 and the
    # last stage 2x2; without the pool they are 24x24 and 3x3 (FER-sized faces need the resolution).
    stem_pool: bool = True
    # A local weights file for the backbone (timm or torchvision state dict, e.g. DenseNet-121 ImageNet
    # weights), handed to timm as pretrained_cfg_overlay=dict(file=...). Loaded only when training starts a
    # run (build_model(..., pretrained=True)); never downloaded. Empty = random initialisation.
    pretrained_file: str = ""
    # False removes the activation after DenseNet's final norm5: timm's DenseNet applies BatchNorm + ReLU
    # there, torchvision's ``densenet121().features`` (which the authors' MTL-GCN max-pools) stops at the
    # BatchNorm, so their pooled features can be negative. Only for backbones with features.norm5.
    final_act: bool = True


class GraphHead(nn.Module):
    """Two GCN layers turning node embeddings into classifier weights (ML-GCN style)."""

    def __init__(self, embeddings: np.ndarray, adj: np.ndarray, feat_dim: int, hidden: int = 512) -> None:
        super().__init__()
        # Buffers, not parameters: they are fixed inputs and must travel inside checkpoints and ONNX.
        self.register_buffer("emb", torch.as_tensor(embeddings, dtype=torch.float32))
        self.register_buffer("adj", torch.as_tensor(adj, dtype=torch.float32))
        self.gc1 = nn.Linear(self.emb.shape[1], hidden, bias=False)
        self.gc2 = nn.Linear(hidden, feat_dim, bias=False)
        self.act = nn.LeakyReLU(0.2)

    def node_weights(self) -> torch.Tensor:
        h = self.act(self.adj @ self.gc1(self.emb))
        return self.adj @ self.gc2(h)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return feat @ self.node_weights().t()


class AffectModel(nn.Module):
    """Backbone + head; ``forward`` returns (logits [N, C], va [N, 2] or None)."""

    def __init__(
        self,
        cfg: ModelConfig,
        embeddings: np.ndarray | None = None,
        adj: np.ndarray | None = None,
        pretrained_file: str = "",
    ):
        """``adj`` is the propagation matrix as the GCN uses it (training.graph.propagation_matrix);
        ``pretrained_file`` is a resolved weights path (build_model passes it when training starts)."""
        super().__init__()
        import timm

        if cfg.head not in HEADS:
            raise ConfigError(f"unknown head {cfg.head!r}; choose one of {HEADS}")
        self.cfg = cfg
        pretrained = {}
        if pretrained_file:
            from pathlib import Path

            if not Path(pretrained_file).is_file():
                raise ConfigError(
                    f"model.pretrained_file: {pretrained_file} does not exist; put the backbone's "
                    "weights file there or set model.pretrained_file to ''"
                )
            pretrained = {"pretrained": True, "pretrained_cfg_overlay": {"file": pretrained_file}}
        self.backbone = timm.create_model(
            cfg.backbone,
            in_chans=cfg.in_chans,
            num_classes=0,
            global_pool=cfg.global_pool,
            drop_rate=cfg.drop_rate,
            **pretrained,
            **cfg.backbone_args,
        )
        if not cfg.final_act:
            norm5 = getattr(getattr(self.backbone, "features", None), "norm5", None)
            if not isinstance(getattr(norm5, "act", None), nn.Module):
                raise ConfigError(
                    f"model.final_act: false needs a DenseNet (features.norm5 with an activation); "
                    f"{cfg.backbone!r} has none"
                )
            norm5.act = nn.Identity()
        if not cfg.stem_pool:
            if not isinstance(getattr(self.backbone, "maxpool", None), nn.MaxPool2d):
                raise ConfigError(
                    f"model.stem_pool: false needs a backbone with a stem max-pool; {cfg.backbone!r} has none"
                )
            self.backbone.maxpool = nn.Identity()
        feat_dim = self.backbone.num_features
        self.has_va = cfg.head != "linear"
        if cfg.head == "mtlgcn":
            if embeddings is None or adj is None:
                raise ConfigError("the mtlgcn head needs label embeddings and an adjacency matrix")
            self.head = GraphHead(embeddings, adj, feat_dim, cfg.gcn_hidden)
        else:
            self.head = nn.Linear(feat_dim, cfg.num_classes)
            self.va_head = nn.Linear(feat_dim, 2) if self.has_va else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cfg.head == "mtlgcn":
            out = self.head(feat)
            return out[:, : self.cfg.num_classes], out[:, self.cfg.num_classes :]
        return self.head(feat), (self.va_head(feat) if self.va_head is not None else None)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.forward_head(self.forward_features(x))


class InferenceModel(nn.Module):
    """The deployed form: softmax probabilities and valence/arousal clipped to [-1, 1].

    Always returns a ``va`` tensor (zeros for a model without a VA head) so callers see one signature.
    With ``flip_average`` the crop and its mirror image run as one batch and their probabilities and
    valence/arousal are averaged (faces are left-right symmetric in distribution; FER+ +0.9 points).
    """

    def __init__(self, model: AffectModel, flip_average: bool = False) -> None:
        super().__init__()
        self.model = model
        self.flip_average = flip_average

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        logits, va = self.model(torch.cat([x, x.flip(-1)]) if self.flip_average else x)
        if va is None:
            va = logits.new_zeros(logits.shape[0], 2)
        probs = torch.softmax(logits, dim=1)
        if self.flip_average:
            probs = (probs[:n] + probs[n:]) * 0.5
            va = (va[:n] + va[n:]) * 0.5
        # The paper's VA outputs are unbounded dot products; consumers expect the [-1, 1] range.
        return probs, va.clamp(-1.0, 1.0)


class ProbsOnly(nn.Module):
    """Exports a model without a VA head with the single output ``probs``."""

    def __init__(self, module: InferenceModel) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[0]
