"""The beta-VAE with a controlled, linearly increasing KL capacity ("annealed VAE").

Burgess, Higgins, Pal, Matthey, Watters, Desjardins & Lerchner 2018, "Understanding disentangling
in beta-VAE": the loss is

    recon + gamma * |KL - C|

where recon is -log p(x|z) (nats per example), KL the closed-form KL(q(z|x) || p(z)) summed over
the latent dimensions (nats per example, batch mean), and the capacity C (nats) rises linearly
from 0 to ``c_max`` over the first ``ramp_steps`` training steps, then stays there. The encoder
is pushed to carry about C nats; as C grows, the latent dimensions switch on one by one, the
factor that most improves the reconstruction first.

The paper's dSprites settings are the config defaults: gamma = 1000, C rising to 25 nats over
100,000 steps. For a short CPU run choose a shorter ramp (``ramp_steps``), e.g. 2,000 steps, live
or in the config: the capacity then grows within the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.vae.vae import VAE, VAEConfig
from engines.shared.spec import HyperParam

#: Ranges of the live hyperparameters: gamma, the capacity in nats, and the ramp in steps.
GAMMA_RANGE = (0.0, 10_000.0)
C_MAX_RANGE = (0.0, 1_000.0)
RAMP_RANGE = (1.0, 10_000_000.0)


def capacity(step: int, c_max: float, ramp_steps: float) -> float:
    """The KL capacity C at a training step, nats: ``c_max * min(1, step / ramp_steps)``.

    Parameters
    ----------
    step : int
        Global step, 0-based (C = 0 at step 0).
    c_max : float
        Final capacity, nats, >= 0.
    ramp_steps : float
        Steps to reach ``c_max``, >= 1.
    """
    return float(c_max) * min(1.0, max(0.0, step / float(ramp_steps)))


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """Settings of :class:`AnnealedVAE`; the paper's dSprites values (Burgess et al. 2018) by default.

    Attributes
    ----------
    gamma : float
        Weight of |KL - C|, live-tunable in ``GAMMA_RANGE``.
    c_max : float
        Final KL capacity, nats, live-tunable in ``C_MAX_RANGE``.
    ramp_steps : int
        Steps over which C rises linearly from 0 to ``c_max``, live-tunable in ``RAMP_RANGE``.

    ``beta`` (inherited) plays no part: gamma weighs the KL term.
    """

    gamma: float = 1000.0
    c_max: float = 25.0
    ramp_steps: int = 100_000


class AnnealedVAE(VAE):
    """beta-VAE with a linearly increasing KL capacity (Burgess et al. 2018); see the module docstring.

    Parameters
    ----------
    config : AnnealedVAEConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points, as for :class:`VAE`.

    Attributes
    ----------
    hyper : dict
        ``gamma``, ``c_max`` (nats), ``ramp_steps`` (integer) and ``lr``; no ``beta``.

    Raises
    ------
    ConfigError
        Out-of-range gamma, c_max or ramp_steps, or any :class:`VAE` error.
    """

    config_class = AnnealedVAEConfig

    def __init__(self, config: AnnealedVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        del self.hyper["beta"]
        try:
            self.hyper["gamma"] = HyperParam("gamma", 0.0, *GAMMA_RANGE, doc="weight of |KL - C|").with_value(
                config.gamma
            )
            self.hyper["c_max"] = HyperParam(
                "c_max", 0.0, *C_MAX_RANGE, doc="final KL capacity C, nats"
            ).with_value(config.c_max)
            self.hyper["ramp_steps"] = HyperParam(
                "ramp_steps", 1.0, *RAMP_RANGE, log=True, integer=True, doc="steps for C to rise from 0 to c_max"
            ).with_value(config.ramp_steps)
        except ConfigError as exc:
            raise ConfigError(f"annealed VAE: {exc}") from exc

    def capacity(self, step: int) -> float:
        """The capacity C (nats) at ``step`` under the current hyperparameters."""
        return capacity(step, self.h("c_max"), self.h("ramp_steps"))

    def regularizer(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl_dim: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``gamma * |KL - C|`` (nats per example) and the logged ``capacity`` C (nats).

        ``kl_dim`` is the (D,) closed-form KL per dimension, batch mean; see :meth:`VAE.regularizer`.
        """
        c = self.capacity(step)
        penalty = self.h("gamma") * (kl_dim.sum() - c).abs()
        return penalty, {"capacity": kl_dim.new_full((), c)}  # a fill, no host copy
