"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets").

The generator's input is z = [noise, c1, c2, ...]: ``latent_dim`` Gaussian noise dimensions, a
categorical code c1 of ``n_categories`` classes given one-hot (drawn uniformly), and
``n_continuous`` continuous codes drawn from U[-1, 1]. A head Q on the discriminator's body
(shared features) predicts the codes from a generated image: logits of c1 and a factored
Gaussian (mean, log variance) for each continuous code. Generator and Q maximise the variational
lower bound on the mutual information I(c; G(z, c)) (the paper's Lemma 5.1)

    L_I = H(c) + E log Q(c | G(z, c))
        = log K - CE(c1, Q) + sum_j [log 2 + log N(c_j; mu_j, exp(logvar_j))]   (nats),

where log K and log 2 are the entropies of the uniform categorical and of U[-1, 1]. The loss is
the GAN loss minus ``mi_lambda`` * L_I, for the generator and for the discriminator with Q (as in
the paper, where Q shares D's parameters); L_I is logged as ``mi`` (nats) from the generator
update. ``mi`` <= H(c) = log K + n_continuous * log 2 for the categorical part; the continuous
part can exceed it as Q's variance shrinks (a density, not a probability).

Packing (PacGAN, Lin et al. 2018) works as for the unconditional GAN (``pack`` m live in [1,
``pack_max``]). Q reads the critic body's features of a packed group and predicts the codes of
every example in it: its output holds ``pack_max`` slots of (c1 logits, means, log variances),
slot i for the group's i-th example, and L_I averages over the m real slots of each group only
(the slots beyond m are ignored), so ``mi`` stays a per-example bound in nats whatever m is. The
loss defaults to ``"gan"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.gan.gan import GAN, GANConfig
from engines.lib.nets import mlp
from engines.shared.spec import HyperParam, LatentDim, LatentSpec

LOG_2PI = math.log(2 * math.pi)
#: Range of Q's log variance for the continuous codes.
LOGVAR_RANGE = (-6.0, 2.0)


@dataclass
class InfoGANConfig(GANConfig):
    """Settings of :class:`InfoGAN`, besides those of :class:`GANConfig`.

    Attributes
    ----------
    latent_dim : int
        Noise dimensions (62 in the paper's MNIST model).
    n_categories : int
        Classes of the categorical code c1 (0 for none).
    n_continuous : int
        Continuous codes c2, c3, ... in [-1, 1].
    mi_lambda : float
        Weight of the mutual-information bound, live-tunable in [0, 10].
    """

    latent_dim: int = 62
    n_categories: int = 10
    n_continuous: int = 2
    mi_lambda: float = 1.0


class InfoGAN(GAN):
    """InfoGAN (Chen et al. 2016) on images or 2-D points.

    Attributes
    ----------
    q_head : nn.Module
        Critic body features of packed groups (G, hidden) -> (G, pack_max * Q) with Q =
        n_categories + 2 * n_continuous: per slot, c1 logits, then the continuous codes' means,
        then their log variances.
    hyper : dict
        :class:`GAN`'s (``pack`` when ``pack_max`` > 1) and ``mi_lambda``.

    Raises
    ------
    ConfigError
        No codes, negative code counts, or any :class:`GAN` error.
    """

    config_class = InfoGANConfig

    def __init__(self, config: InfoGANConfig, data: DataInfo) -> None:
        if config.n_categories < 0 or config.n_continuous < 0 or config.n_categories + config.n_continuous == 0:
            raise ConfigError("infogan needs at least one code: n_categories >= 0, n_continuous >= 0, not both 0")
        if config.n_categories == 1:
            raise ConfigError("infogan: a categorical code needs at least 2 categories (or 0 for none)")
        super().__init__(config, data)
        self.hyper["mi_lambda"] = HyperParam(
            "mi_lambda", 1.0, 0.0, 10.0, doc="weight of the mutual-information bound"
        ).with_value(config.mi_lambda)

    # -- layout --------------------------------------------------------------------------------
    def build_latent(self) -> LatentSpec:
        """Noise z0.. (Gaussian), c1's one-hot block (group ``"c1"``), then c2, c3, ... in [-1, 1]."""
        c = self.config
        noise = LatentSpec.gaussian(c.latent_dim).dims
        cat = tuple(LatentDim(f"c1={k}", "categorical", 0.0, 1.0, "c1") for k in range(c.n_categories))
        first = 2 if c.n_categories else 1
        cont = tuple(LatentDim(f"c{first + j}", "uniform", -1.0, 1.0) for j in range(c.n_continuous))
        return LatentSpec(noise + cat + cont)

    def build_extra(self) -> None:
        c = self.config
        self.q_head = mlp(c.hidden, c.pack_max * self.q_width(), c.hidden, 1, act="leaky_relu")

    def q_width(self) -> int:
        """Q's outputs per slot: n_categories + 2 * n_continuous."""
        return self.config.n_categories + 2 * self.config.n_continuous

    def q_slots(self, feats: torch.Tensor) -> torch.Tensor:
        """Q's per-example outputs from packed features.

        Parameters
        ----------
        feats : (G, hidden)
            Critic body features of G groups of m = ``pack`` examples.

        Returns
        -------
        (G * m, n_categories + 2 * n_continuous) tensor
            The m real slots of each group in example order; slots beyond m are dropped.
        """
        m = self.pack_size()
        q = self.q_head(feats).view(feats.shape[0], self.config.pack_max, self.q_width())
        return q[:, :m].reshape(feats.shape[0] * m, self.q_width())

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters()) + list(self.q_head.parameters())

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent.dim): N(0, 1) noise, a uniform one-hot c1 and U[-1, 1] continuous codes."""
        c, dev = self.config, self.device
        parts = [torch.randn(n, c.latent_dim, generator=generator, device=dev)]
        if c.n_categories:
            k = torch.randint(0, c.n_categories, (n, 1), generator=generator, device=dev)
            parts.append(torch.zeros(n, c.n_categories, device=dev).scatter_(1, k, 1.0))
        parts.append(torch.rand(n, c.n_continuous, generator=generator, device=dev) * 2.0 - 1.0)
        return torch.cat(parts, 1)

    def codes_entropy(self) -> float:
        """H(c) in nats: log K + n_continuous * log 2."""
        c = self.config
        return (math.log(c.n_categories) if c.n_categories else 0.0) + c.n_continuous * math.log(2.0)

    # -- the bound -------------------------------------------------------------------------------
    def mi_bound(self, z: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """The lower bound L_I (module docstring), 0-d, nats, averaged over the examples.

        Parameters
        ----------
        z : (N, latent.dim)
            The generator inputs, holding the codes.
        feats : (N // m, hidden)
            Critic body features of G(z) packed m = ``pack`` at a time; Q's prediction for slot i
            of group g is scored against the codes of example g * m + i (a last incomplete group
            was dropped by the packing).
        """
        c = self.config
        k, j = c.n_categories, c.n_continuous
        q = self.q_slots(feats)
        codes = z[: q.shape[0], c.latent_dim :]
        bound = torch.zeros((), device=z.device) + self.codes_entropy()
        if k:
            bound = bound - F.cross_entropy(q[:, :k], codes[:, :k].argmax(1))
        if j:
            mu, logvar = q[:, k : k + j], q[:, k + j :].clamp(*LOGVAR_RANGE)
            log_q = -0.5 * (LOG_2PI + logvar + (codes[:, k:] - mu).pow(2) * torch.exp(-logvar))
            bound = bound + log_q.sum(1).mean()
        return bound

    def aux_loss(self, z: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-mi_lambda * L_I, and ``mi`` (L_I, nats) for the log."""
        mi = self.mi_bound(z, feats)
        return -self.h("mi_lambda") * mi, {"mi": mi}

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Q's estimate of the codes of images or points x (N, ...).

        Examples are packed m = ``pack`` at a time as in training; when N is not a multiple of m
        the last group is completed with copies of the last example (their predictions dropped).

        Returns
        -------
        (N, n_categories + n_continuous) tensor
            The c1 probabilities in [0, 1], then the continuous codes' means.
        """
        c = self.config
        x = x.to(device=self.device, dtype=torch.float32)
        n, m = x.shape[0], self.pack_size()
        if n % m:
            x = torch.cat([x, x[-1:].expand(m - n % m, *x.shape[1:])], 0)
        q = self.q_slots(self.discriminate(x)[1])[:n]
        k, j = c.n_categories, c.n_continuous
        return torch.cat([q[:, :k].softmax(1), q[:, k : k + j]], 1)
