"""What the RBMs here share (rbm, grbm, dbn): the four live hyperparameters of contrastive-divergence training,
the SGD optimiser with momentum and weight decay on the weights only (Hinton 2010, "A practical guide to training
RBMs", sections 9-10), how a live change reaches it, and a seeded Bernoulli draw."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from engines.shared.spec import HyperParam


def cd_hypers(config, lr_default: float = 0.05, lr_doc: str = "SGD learning rate") -> dict[str, HyperParam]:  # noqa: ANN001
    """The live ``lr``, ``k``, ``momentum`` and ``weight_decay`` of an RBM trained by CD-k / PCD-k, at the
    config's values (lr in [1e-5, 1], log scale; k in [1, 100]; momentum in [0, 0.99]; weight decay in [0, 0.01])."""
    return {
        "lr": HyperParam("lr", lr_default, 1e-5, 1.0, log=True, doc=lr_doc).with_value(config.lr),
        "k": HyperParam("k", 1, 1, 100, integer=True, doc="Gibbs sweeps per negative phase (CD-k / PCD-k)")
        .with_value(config.k),
        "momentum": HyperParam("momentum", 0.5, 0.0, 0.99, doc="SGD momentum").with_value(config.momentum),
        "weight_decay": HyperParam("weight_decay", 2e-4, 0.0, 0.01, doc="L2 penalty on the weights")
        .with_value(config.weight_decay),
    }


def cd_sgd(weights: torch.nn.Parameter, others: Iterable[torch.nn.Parameter], config) -> torch.optim.SGD:  # noqa: ANN001
    """SGD at the config's lr and momentum: group 0 the weights with the config's weight decay, group 1 the
    biases (and any other parameter) without."""
    return torch.optim.SGD([{"params": [weights], "weight_decay": config.weight_decay},
                            {"params": list(others), "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum)


def apply_cd_hyper(opt: torch.optim.Optimizer, name: str, value: float) -> None:
    """A live change of ``lr`` or ``momentum`` (every group) or ``weight_decay`` (the weights' group) into an
    optimiser made by :func:`cd_sgd`; ``k`` needs nothing here."""
    for i, group in enumerate(opt.param_groups):
        if name in ("lr", "momentum"):
            group[name] = value
        elif name == "weight_decay" and i == 0:
            group["weight_decay"] = value


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A binary draw (same shape and dtype as p) with P(1) = p in [0, 1], from ``generator`` where given."""
    return (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)
