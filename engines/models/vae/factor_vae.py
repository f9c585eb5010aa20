"""FactorVAE: the ELBO plus a discriminator estimate of the total correlation of q(z).

Kim & Mnih 2018, "Disentangling by Factorising". A discriminator D (an MLP, z (B, D) -> two
logits: "from q(z)" and "from the product of its marginals") learns to tell draws of the
aggregate posterior q(z) from draws of prod_d q(z_d), made by permuting each latent dimension
independently across the batch (the paper's Algorithm 1). With the density-ratio trick the total
correlation is

    TC(z) = KL(q(z) || prod_d q(z_d)) ~ E_q(z) [logit_0(z) - logit_1(z)]   (nats)

and the VAE minimises ``recon + beta * KL + gamma * TC`` (beta = 1 in the paper; the inherited
live ``beta`` is kept). The discriminator minimises the cross entropy ``d_loss`` with its own Adam
(the paper's lr 1e-4, betas (0.5, 0.9)).

Differences from the paper, on purpose:

- D is trained on the same batch as the VAE step (its detached z against a dimension-wise
  permutation of it), after the VAE's Adam step, not on a second batch: one batch per step keeps
  the trainer's contract. The z it sees are therefore the ones the VAE just used.
- The paper's D has 6 hidden layers of 1000 units (LeakyReLU 0.2); that is the config default.
  On a CPU, ``d_hidden=256`` (or fewer layers) trains several times faster and is enough for a
  latent of 10 dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.vae.vae import VAE, VAEConfig
from engines.shared.spec import HyperParam

#: Range of the live TC weight gamma.
GAMMA_RANGE = (0.0, 1000.0)
#: Range of the discriminator's live learning rate (log scale).
D_LR_RANGE = (1e-6, 1e-1)
#: Adam betas of the discriminator (Kim & Mnih 2018).
D_BETAS = (0.5, 0.9)
#: Negative slope of the discriminator's LeakyReLU (Kim & Mnih 2018).
LEAKY_SLOPE = 0.2


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch (Kim & Mnih 2018, Algorithm 1).

    Parameters
    ----------
    z : (B, D) tensor
        Draws from q(z).
    generator : torch.Generator or None
        Random source for the permutations (on z's device).

    Returns
    -------
    (B, D) tensor
        Each column a permutation of the same column of z: approximately draws from prod_d q(z_d).
    """
    b, d = z.shape
    keys = torch.rand(b, d, generator=generator, device=z.device)
    idx = keys.argsort(dim=0)  # an independent permutation per column
    return z.gather(0, idx)


def discriminator(latent_dim: int, hidden: int, depth: int) -> nn.Sequential:
    """The FactorVAE discriminator: z (B, latent_dim) -> logits (B, 2), [true q(z), permuted].

    ``depth`` hidden layers of ``hidden`` units with LeakyReLU(``LEAKY_SLOPE``); the paper's is
    depth 6, hidden 1000.
    """
    layers: list[nn.Module] = []
    prev = latent_dim
    for _ in range(depth):
        layers += [nn.Linear(prev, hidden), nn.LeakyReLU(LEAKY_SLOPE)]
        prev = hidden
    layers.append(nn.Linear(prev, 2))
    return nn.Sequential(*layers)


def discriminator_loss(logits_q: torch.Tensor, logits_perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross entropy and accuracy of D on draws of q(z) (class 0) and permuted draws (class 1).

    Parameters
    ----------
    logits_q, logits_perm : (B, 2) tensors

    Returns
    -------
    loss : 0-d tensor
        The mean of the two classes' cross entropies, nats (log 2 at chance).
    acc : 0-d tensor
        Fraction classified right over both sets, in [0, 1] (0.5 at chance).
    """
    zeros = torch.zeros(logits_q.shape[0], dtype=torch.long, device=logits_q.device)
    ones = torch.ones(logits_perm.shape[0], dtype=torch.long, device=logits_perm.device)
    loss = 0.5 * (F.cross_entropy(logits_q, zeros) + F.cross_entropy(logits_perm, ones))
    right = (logits_q.argmax(-1) == 0).float().sum() + (logits_perm.argmax(-1) == 1).float().sum()
    return loss, right / (logits_q.shape[0] + logits_perm.shape[0])


@dataclass
class FactorVAEConfig(VAEConfig):
    """Settings of :class:`FactorVAE` (Kim & Mnih 2018).

    Attributes
    ----------
    gamma : float
        Weight of the TC estimate, live-tunable in ``GAMMA_RANGE`` (the paper uses 35 on dSprites;
        the studio's benchmark uses 10).
    d_lr : float
        Discriminator Adam learning rate, live-tunable in ``D_LR_RANGE``.
    d_hidden : int
        Width of the discriminator's hidden layers (>= 1).
    d_depth : int
        Number of the discriminator's hidden layers (>= 0).
    """

    gamma: float = 10.0
    d_lr: float = 1e-4
    d_hidden: int = 1000
    d_depth: int = 6


class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih 2018): recon + beta * KL + gamma * TC estimate; module docstring.

    Parameters
    ----------
    config : FactorVAEConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    discriminator : nn.Sequential
        z (B, D) -> (B, 2) logits, see :func:`discriminator`; not updated by the VAE's Adam.
    d_opt : torch.optim.Adam
        The discriminator's optimiser.
    hyper : dict
        ``beta`` (on the KL), ``gamma``, ``lr`` and ``d_lr``.

    Raises
    ------
    ConfigError
        Out-of-range gamma or d_lr, a bad discriminator size, or any :class:`VAE` error.
    """

    config_class = FactorVAEConfig

    def __init__(self, config: FactorVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)  # the VAE's Adam holds the encoder and decoder only
        if config.d_hidden < 1 or config.d_depth < 0:
            raise ConfigError(
                f"FactorVAE: need d_hidden >= 1 and d_depth >= 0, not {config.d_hidden} and {config.d_depth}"
            )
        try:
            self.hyper["gamma"] = HyperParam("gamma", 0.0, *GAMMA_RANGE, doc="weight of the TC estimate").with_value(
                config.gamma
            )
            self.hyper["d_lr"] = HyperParam(
                "d_lr", 1e-4, *D_LR_RANGE, log=True, doc="discriminator Adam learning rate"
            ).with_value(config.d_lr)
        except ConfigError as exc:
            raise ConfigError(f"FactorVAE: {exc}") from exc
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 1)
            self.discriminator = discriminator(config.latent_dim, config.d_hidden, config.d_depth)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=config.d_lr, betas=D_BETAS)

    def on_hyper_changed(self, name: str, value: float) -> None:
        super().on_hyper_changed(name, value)
        if name == "d_lr":
            for group in self.d_opt.param_groups:
                group["lr"] = value

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.opt, "discriminator": self.d_opt}

    def tc_estimate(self, z: torch.Tensor) -> torch.Tensor:
        """The density-ratio TC estimate, mean of logit_0 - logit_1 over z (B, D): 0-d, nats.

        Gradients flow into z (and into D's parameters, which the VAE's Adam does not update)."""
        logits = self.discriminator(z)
        return (logits[:, 0] - logits[:, 1]).mean()

    def regularizer(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl_dim: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``beta * KL + gamma * tc_estimate(z)`` (nats per example); logs ``tc_estimate`` (nats)."""
        tc = self.tc_estimate(z)
        return self.h("beta") * kl_dim.sum() + self.h("gamma") * tc, {"tc_estimate": tc}

    def train_discriminator(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step of D on z (B, D) (class 0) against :func:`permute_dims` of z (class 1).

        Returns the detached ``d_loss`` (nats) and ``d_acc`` (in [0, 1]) before the step, 0-d.
        """
        z = z.detach()
        loss, acc = discriminator_loss(self.discriminator(z), self.discriminator(permute_dims(z)))
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return loss.detach(), acc

    def after_update(self, z: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Train the discriminator on the step's z; logs ``d_loss`` (nats) and ``d_acc``."""
        d_loss, d_acc = self.train_discriminator(z)
        return {"d_loss": d_loss, "d_acc": d_acc}
