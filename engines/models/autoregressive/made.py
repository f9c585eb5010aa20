"""MADE as a density model of binary images, with several orderings and masks (Germain et al. 2015).

One masked MLP (:class:`~engines.lib.made.MADE`) gives all D Bernoulli logits in one pass; the masks
make logit d depend only on the values before d in the model's ordering. With ``n_masks`` > 1 the
model is trained connectivity-agnostically (section 4.2): each training step uses the next of
``n_masks`` fixed (ordering, hidden-degree) pairs, mask 0 being the natural raster order and the
others seeded random orderings, so the one set of weights learns every one of those factorisations.
The live hyperparameter ``mask`` picks the one used for log p(x), the pixel-surprise map and
sampling: each is an exact, normalised autoregressive model, and sampling follows its ordering
(order-agnostic sampling: the pixels appear in that mask's order). The paper's ensembles, which
average the probabilities of several masks, are not used here (one mask: 88.40 nats in the paper's
Table 6 for 1 hidden layer of 500 units, 32 masks averaged 86.64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engines.lib.made import MADE
from engines.models.autoregressive.base import ARModel, check_likelihood
from engines.models.base import EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import HyperParam

#: Most masks one model may cycle through.
MAX_MASKS = 64


@dataclass
class MADEConfig(EngineConfig):
    """Settings of :class:`MADEModel`.

    Attributes
    ----------
    lr : float
        Adam learning rate, live-tunable in [1e-6, 0.1].
    hidden : int
        Units of each hidden layer (the paper: 500).
    depth : int
        Hidden layers.
    n_masks : int
        Orderings and masks trained (1..:data:`MAX_MASKS`; 1: the raster order only).
    likelihood : {"bernoulli"}
    """

    lr: float = 1e-3
    hidden: int = 500
    depth: int = 1
    n_masks: int = 4
    likelihood: str = "bernoulli"


def mask_ordering(dim: int, index: int, seed: int) -> np.ndarray:
    """The ordering of mask ``index``: raster order for 0, a permutation seeded by (seed, index) otherwise.

    Returns
    -------
    (dim,) int array
        ``order[d]``: value d's place in the ordering (the convention of :class:`~engines.lib.made.MADE`).
    """
    if index == 0:
        return np.arange(dim)
    return np.random.default_rng([int(seed), int(index)]).permutation(dim)


class MADEModel(ARModel):
    """MADE (Germain et al. 2015) with ``n_masks`` orderings, one of them live (hyperparameter ``mask``).

    Parameters
    ----------
    config : MADEConfig
    data : DataInfo
        Images (C, H, W); values flattened in C, H, W order.

    Attributes
    ----------
    net : MADE
        D -> ``depth`` x ``hidden`` -> (1, D) logits.

    Raises
    ------
    ConfigError
        Non-image data, ``hidden`` or ``depth`` below 1, ``n_masks`` outside 1..64, a likelihood
        other than "bernoulli", a non-positive ``lr``.
    """

    config_class = MADEConfig

    def __init__(self, config: MADEConfig, data: DataInfo) -> None:
        check_likelihood("MADE", config.likelihood, ("bernoulli",))
        if config.hidden < 1 or config.depth < 1:
            raise ConfigError(f"MADE: hidden and depth must be at least 1, not {config.hidden}, {config.depth}")
        if not 1 <= config.n_masks <= MAX_MASKS:
            raise ConfigError(f"MADE: n_masks must be in 1..{MAX_MASKS}, not {config.n_masks}")
        super().__init__(config, data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.net = MADE(self.n_dims, [config.hidden] * config.depth, k=1)
        self.hyper["mask"] = HyperParam("mask", 0, 0, config.n_masks - 1, integer=True,
                                        doc="which ordering and mask the model samples and scores with")
        self.register_buffer("mask_index", torch.tensor(-1))  # the masks in use (saved, so a copy knows them)
        self.use_mask(0)
        self.finish_init()

    def use_mask(self, index: int) -> None:
        """Switch the network's masks to mask ``index`` (0..n_masks-1); weights are kept."""
        index = int(index)
        if index != int(self.mask_index):
            self.net.set_order(mask_ordering(self.n_dims, index, self.config.seed), mask_seed=self.config.seed + index)
            self.mask_index.fill_(index)

    def on_hyper_changed(self, name: str, value: float) -> None:
        super().on_hyper_changed(name, value)
        if name == "mask":
            self.use_mask(int(value))

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One step with mask ``step % n_masks`` (connectivity-agnostic training); the live mask is restored after."""
        if self.config.n_masks > 1:
            self.use_mask(step % self.config.n_masks)
        try:
            return super().training_step(batch, step)
        finally:
            self.use_mask(int(self.h("mask")))

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) -> logits (N, 1, C, H, W) under the active mask."""
        return self.net(x.flatten(1)).view(x.shape[0], 1, *self.shape)

    def sampling_order(self) -> torch.Tensor:
        """The active mask's ordering as flat positions, first drawn first."""
        return torch.argsort(self.net.order.cpu())
