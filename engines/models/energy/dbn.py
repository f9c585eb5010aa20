"""The deep belief net: a stack of Bernoulli-Bernoulli RBMs trained greedily, one layer after another
(Hinton, Osindero & Teh 2006, "A fast learning algorithm for deep belief nets", section 4).

The stack has L = ``layers`` + 1 RBMs. Their sizes run V (the pixels) -> ``hidden`` -> ... -> ``hidden`` ->
``latent_dim``: ``layers`` lower hidden layers of ``hidden`` units each, then the top RBM's ``latent_dim`` hidden
units. RBM l (0-based) has weights W_l (n_l, n_{l+1}), visible biases b_l and hidden biases c_l, with the same
conditionals as :mod:`engines.models.energy.rbm`,

    p(h = 1 | v) = sigmoid(c_l + v.W_l),        p(v = 1 | h) = sigmoid(b_l + h.W_l^T).

Greedy training: the step decides the layer in training, l = min(step // layer_steps, L - 1), so a resumed run
trains the same layer as an uninterrupted one. The batch goes up through the frozen RBMs below l, each giving
p(h | v) and then a binary draw of it (the paper's scheme: the data of RBM l are samples of the aggregated
posterior of the layers below), and RBM l takes one CD-k (or PCD-k) update with its own SGD optimiser (momentum,
and weight decay on W; Hinton 2010). The last RBM keeps training after its turn.

The generative model is an RBM on top (an undirected associative memory over the top two layers) and directed
sigmoid belief layers below it, whose top-down weights are the lower RBMs' W^T. So a sample is a Gibbs chain
in the top RBM followed by one pass down. The latent z is the top RBM's hidden layer, binary, a toggle per unit.

What the studio sees: ``encode`` is the up pass by probabilities to p(h_top | x); ``decode`` the top RBM's
visible means given z, then down through each lower layer's p(v | h) by means, to pixel means; ``sample``
``sample_sweeps`` Gibbs sweeps in the top RBM from random states, then ``decode``. No likelihood is declared:
the DBN's variational bound (by AIS on the top RBM) is not computed, so ``log_prob`` is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.lib.ais import free_energy
from engines.models.base import Engine, EngineConfig
from engines.models.energy.common import apply_cd_hyper, bernoulli, cd_hypers, cd_sgd
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.shared.spec import LatentDim, LatentSpec


@dataclass
class DBNConfig(EngineConfig):
    """Settings of :class:`DBN`.

    Attributes
    ----------
    latent_dim : int
        Hidden units of the top RBM (the latent z), in [1, 4096].
    hidden : int
        Units of each lower hidden layer (``--set hidden=500``), in [1, 16384] where ``layers`` > 0.
    layers : int
        Lower hidden layers, in [0, 64] (``--set layers=2``): the stack has ``layers`` + 1 RBMs. With 0 the DBN is
        one RBM of ``latent_dim`` hidden units, trained exactly as :class:`~engines.models.energy.rbm.RBM`.
        (The paper's MNIST net: two layers of 500, then 2000 top units beside 10 label units.)
    layer_steps : int
        Training steps each RBM takes before the next one starts (the top RBM carries on after its turn).
    lr : float
        SGD learning rate, live in [1e-5, 1].
    k : int
        Gibbs sweeps per negative phase (CD-k / PCD-k), live in [1, 100].
    persistent : bool
        Persistent contrastive divergence (Tieleman 2008): each RBM's negative phase continues ``chains`` chains.
    chains : int
        Persistent chains per RBM (PCD).
    momentum : float
        SGD momentum, live in [0, 0.99].
    weight_decay : float
        L2 penalty on the weights, live in [0, 0.01].
    sample_sweeps : int
        Gibbs sweeps of a fresh chain in the top RBM in :meth:`DBN.prior_sample`.
    """

    latent_dim: int = 500
    hidden: int = 500
    layers: int = 2
    layer_steps: int = 5000
    lr: float = 0.05
    k: int = 1
    persistent: bool = False
    chains: int = 100
    momentum: float = 0.5
    weight_decay: float = 2e-4
    sample_sweeps: int = 500


class StackedRBM(nn.Module):
    """One RBM of the stack: W (V, H) drawn N(0, 0.01) from ``generator``, b (V,) and c (H,) zero, and PCD's
    chains ``persistent_v`` (chains, V), Bernoulli(1/2), drawn after W (the draws an :class:`RBM` makes)."""

    def __init__(self, V: int, H: int, chains: int, generator: torch.Generator) -> None:
        super().__init__()
        self.W = nn.Parameter(0.01 * torch.randn(V, H, generator=generator))
        self.b = nn.Parameter(torch.zeros(V))
        self.c = nn.Parameter(torch.zeros(H))
        self.register_buffer("persistent_v", (torch.rand(chains, V, generator=generator) < 0.5).float())

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v): (N, H) for v (N, V)."""
        return torch.sigmoid(v @ self.W + self.c)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h): (N, V) for h (N, H)."""
        return torch.sigmoid(h @ self.W.T + self.b)

    def gibbs(self, v: torch.Tensor, sweeps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``sweeps`` Gibbs sweeps (h | v, then v | h) from binary v (N, V); the last binary v."""
        for _ in range(int(sweeps)):
            h = bernoulli(self.hidden_probs(v), generator)
            v = bernoulli(self.visible_probs(h), generator)
        return v

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) (N,) nats for v (N, V)."""
        return free_energy(v, self.W, self.b, self.c)


class DBN(Engine):
    """Deep belief net trained greedily as a stack of RBMs (module docstring).

    Parameters
    ----------
    config : DBNConfig
    data : DataInfo
        Images (C, H, W) in [0, 1]; grey values are read as Bernoulli means (binarised data is what the model
        describes: see ``binarized:SPEC``).

    Attributes
    ----------
    rbms : ModuleList of StackedRBM
        The L RBMs, bottom (pixels) first; ``rbms[-1]`` is the top RBM, whose hidden units are z.
    n_layers : int
        L, the RBMs in the stack (``layers`` + 1).
    sizes : tuple of int
        Units per layer, pixels first: (V, hidden, ..., latent_dim), L + 1 entries.

    Raises
    ------
    ConfigError
        Non-image data, or a setting out of range.
    """

    family = "energy"
    config_class = DBNConfig

    def __init__(self, config: DBNConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        if data.kind != "image":
            raise ConfigError("a DBN models images (binary pixels); use an image data set, e.g. binarized:digits")
        checks = [("latent_dim", 1, 4096), ("layers", 0, 64), ("layer_steps", 1, 10**9), ("k", 1, 100),
                  ("chains", 1, 10_000), ("sample_sweeps", 1, 100_000)]
        if int(config.layers) > 0:
            checks.append(("hidden", 1, 16384))
        for name, lo, hi in checks:
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"DBN: {name} must be an integer in [{lo}, {hi}], not {value!r}")
        self.shape = tuple(data.shape)
        self.sizes = (int(math.prod(data.shape)), *[int(config.hidden)] * int(config.layers), int(config.latent_dim))
        self.n_layers = len(self.sizes) - 1
        gen = torch.Generator().manual_seed(config.seed)
        self.rbms = nn.ModuleList(StackedRBM(self.sizes[i], self.sizes[i + 1], int(config.chains), gen)
                                  for i in range(self.n_layers))
        self.latent = LatentSpec(tuple(LatentDim(f"h{j}", "binary", 0.0, 1.0) for j in range(self.sizes[-1])))
        self.hyper = cd_hypers(config, lr_doc="SGD learning rate of the layer in training")
        self.opts = [cd_sgd(r.W, [r.b, r.c], config) for r in self.rbms]

    # -- the schedule, hyperparameters and optimisers --------------------------------------------
    def current_layer(self, step: int) -> int:
        """The RBM (0-based) that ``step`` trains: min(step // layer_steps, L - 1)."""
        return min(max(int(step), 0) // int(self.config.layer_steps), self.n_layers - 1)

    def on_hyper_changed(self, name: str, value: float) -> None:
        """lr, momentum and weight decay go to every RBM's optimiser: the frozen ones never step again, so the
        value acts on the layer in training and on those still to come."""
        for opt in self.opts:
            apply_cd_hyper(opt, name, value)

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        """One SGD optimiser per RBM: ``sgd1`` (the bottom) to ``sgdL`` (the top)."""
        return {f"sgd{i + 1}": opt for i, opt in enumerate(self.opts)}

    # -- passes through the stack ----------------------------------------------------------------
    def up(self, v: torch.Tensor, to: int, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixels v (N, V) up through RBMs 0 .. ``to`` - 1: each layer p(h | v), then a binary draw of it where
        ``sample``; the visible layer of RBM ``to``, (N, sizes[to]). ``to`` = 0 returns v."""
        for rbm in self.rbms[:to]:
            p = rbm.hidden_probs(v)
            v = bernoulli(p, generator) if sample else p
        return v

    def down(self, h: torch.Tensor, start: int, sample: bool,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The visible layer h (N, sizes[start]) of RBM ``start`` down to the pixels through each lower RBM's
        p(v | h), passing binary draws where ``sample``, else the means. Returns (pixel means, pixel states)
        (N, V); the states are the draws where ``sample``, else the means again."""
        p = h
        for rbm in reversed(self.rbms[:start]):
            p = rbm.visible_probs(h)
            h = bernoulli(p, generator) if sample else p
        return p, h

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        """One CD-k (or PCD-k) update of the RBM in training, :meth:`current_layer` (``step``), on a batch
        (B, C, H, W) in [0, 1] passed up through the frozen RBMs below it (p(h | v), then a binary draw).

        Returns ``layer`` (the RBM in training, 1-based), and of that RBM on its input: ``recon`` (squared error
        of a one-sweep reconstruction, per example), ``free_energy`` (mean F, nats) and ``pseudo_nll`` (the
        stochastic pseudo-negative-log-likelihood, one random unit flipped per example, nats: Besag 1975).
        """
        layer = self.current_layer(step)
        rbm = self.rbms[layer]
        k = int(self.h("k"))
        with torch.no_grad():
            v0 = self.up(batch.flatten(1).to(rbm.W.dtype), layer, sample=True)
            n, V = v0.shape
            ph0 = rbm.hidden_probs(v0)
            if self.config.persistent:
                vk = rbm.gibbs(rbm.persistent_v, k)
                rbm.persistent_v.copy_(vk)
            else:
                vk = rbm.gibbs(bernoulli(v0), k)  # CD-k from the input (binarised by sampling)
            phk = rbm.hidden_probs(vk)
            m = vk.shape[0]
            rbm.W.grad = -(v0.T @ ph0 / n - vk.T @ phk / m)
            rbm.b.grad = -(v0.mean(0) - vk.mean(0))
            rbm.c.grad = -(ph0.mean(0) - phk.mean(0))
        self.opts[layer].step()
        with torch.no_grad():
            recon = rbm.visible_probs(bernoulli(rbm.hidden_probs(v0)))
            fe = rbm.free_energy(v0)
            rows = torch.arange(n, device=v0.device)
            flip = torch.randint(0, V, (n,), device=v0.device)
            v_flip = v0.clone()
            v_flip[rows, flip] = 1 - v_flip[rows, flip]
            pseudo = -V * F.logsigmoid(rbm.free_energy(v_flip) - fe)
        return {"layer": float(layer + 1), "recon": float(((recon - v0) ** 2).sum(1).mean()),
                "free_energy": float(fe.mean()), "pseudo_nll": float(pseudo.mean())}

    # -- the latent -----------------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Top hidden states (n, latent_dim), binary: fresh Gibbs chains in the top RBM (from Bernoulli(1/2)
        visible states) after ``sample_sweeps`` sweeps, then h drawn given the last visible state."""
        top = self.rbms[-1]
        with torch.no_grad():
            v = bernoulli(torch.full((int(n), self.sizes[-2]), 0.5, device=self.device), generator)
            v = top.gibbs(v, self.config.sample_sweeps, generator)
            return bernoulli(top.hidden_probs(v), generator)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The top RBM's visible means p(v | z), then down through each lower RBM's p(v | h) by means: pixel means
        (N, C, H, W) in [0, 1] for top hidden states z (N, latent_dim) in [0, 1]."""
        top = self.rbms[-1]
        means, _ = self.down(top.visible_probs(z.to(top.W)), self.n_layers - 1, sample=False)
        return means.view(-1, *self.shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The up pass by probabilities: p(h_top = 1 | ...) (N, latent_dim) in [0, 1] for images x (N, C, H, W)."""
        return self.hidden_layers(x)[-1]

    def hidden_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The up pass by probabilities of images x (N, C, H, W) in [0, 1]: [p(h1 | v), p(h2 | p(h1)), ...], one
        (N, sizes[l + 1]) tensor per RBM, the top RBM's (z) last."""
        v = x.flatten(1).to(self.rbms[0].W)
        out = []
        for rbm in self.rbms:
            v = rbm.hidden_probs(v)
            out.append(v)
        return out

    # -- the chains the Energy tab watches (the "chains" extra) ------------------------------------
    # The state is the pixels (n, V), binary, as the RBM's. A step is an up-down chain: the pixels up through the
    # lower RBMs' p(h | v) by draws, one Gibbs sweep in the top RBM, then down through p(v | h) by draws. The lower
    # RBMs' p(h | v) only approximate the directed layers' posteriors, so this is not an exact Gibbs chain of the
    # DBN, but it is how the stack is watched (with no lower layers it is exactly the RBM's chain).
    def chain_start(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random pixel states (n, V) to start ``n`` chains from (Bernoulli(1/2))."""
        return bernoulli(torch.full((int(n), self.sizes[0]), 0.5, device=self.device), generator)

    def clamp_values(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """An image (1, C, H, W) in [0, 1] as pixel values (1, V) to clamp a chain to: a binary draw."""
        return bernoulli(image.reshape(1, -1).to(self.rbms[0].W), generator)

    def chain_step(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One up-down step of chains with pixel states v (n, V): up by draws, one Gibbs sweep in the top RBM, down
        by draws; the new pixel states (n, V), binary."""
        top = self.n_layers - 1
        t = self.rbms[top].gibbs(self.up(v, top, sample=True, generator=generator), 1, generator)
        return self.down(t, top, sample=True, generator=generator)[1]

    def chain_images(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What the chains show: the pixel means of the down pass from the state v (n, V), i.e. v up by draws to
        the top hidden layer, h drawn there, then :meth:`decode`: images (n, C, H, W) in [0, 1]."""
        top = self.rbms[-1]
        t = self.up(v, self.n_layers - 1, sample=True, generator=generator)
        return self.decode(bernoulli(top.hidden_probs(t), generator))

    def filters(self, layer: int = 0) -> torch.Tensor:
        """Each unit of hidden layer ``layer`` (0-based RBM index) as a receptive field in pixel space, (H_l, C, h,
        w) in [0, 1], scaled per unit (0.5 is a zero weight). Layer 0: the first RBM's weights, as the RBM's
        filters; a higher layer: the product W_0 W_1 ... W_l, the linear map from the pixels to its units.

        Raises
        ------
        ConfigError
            ``layer`` is not an integer in [0, L - 1].
        """
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < self.n_layers:
            raise ConfigError(f"DBN: filters(layer) wants a layer in [0, {self.n_layers - 1}], not {layer!r}")
        with torch.no_grad():
            w = self.rbms[0].W.detach()
            for rbm in self.rbms[1:layer + 1]:
                w = w @ rbm.W.detach()
            w = w.T
            scale = w.abs().amax(1, keepdim=True).clamp_min(1e-12)
            return (0.5 + 0.5 * w / scale).reshape(-1, *self.shape)
