"""DIP-VAE: the ELBO plus a penalty matching a covariance of the latents to the identity.

Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations" (disentangled inferred prior). With Cov the (D, D) covariance of the
latents over the batch, the loss is

    recon + beta * KL + lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2

(beta = 1 in the paper; the inherited live ``beta`` is kept), where

- DIP-VAE-I (``dip_type="i"``) takes Cov = Cov_x[mu(x)], the covariance of the posterior means;
- DIP-VAE-II (``dip_type="ii"``) takes Cov = Cov_q(z) = E_x[diag(exp(logvar(x)))] + Cov_x[mu(x)],
  the covariance of the aggregate posterior q(z).

The logged ``dip_od`` and ``dip_d`` are the two unweighted sums (squared covariances in squared
latent units). The defaults follow the paper: lambda_od = 10, and lambda_d = 10 * lambda_od for
DIP-VAE-I, lambda_d = lambda_od for DIP-VAE-II.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.vae.vae import VAE, VAEConfig
from engines.shared.spec import HyperParam

#: Ranges of the live weights of the off-diagonal and diagonal penalties.
LAMBDA_OD_RANGE = (0.0, 1000.0)
LAMBDA_D_RANGE = (0.0, 10_000.0)
#: lambda_d / lambda_od when the config leaves lambda_d None (the rule of Kumar et al. 2018).
LAMBDA_D_FACTOR = {"i": 10.0, "ii": 1.0}


def latent_covariance(mu: torch.Tensor, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """Batch covariance of the posterior means, plus the mean posterior variance when ``logvar`` is given.

    Parameters
    ----------
    mu : (B, D) tensor
    logvar : (B, D) tensor or None
        None gives DIP-VAE-I's Cov[mu]; a tensor gives DIP-VAE-II's
        Cov_q(z) = Cov[mu] + diag(mean_b exp(logvar)).

    Returns
    -------
    (D, D) tensor
        The biased (1 / B) covariance, symmetric.
    """
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]
    if logvar is not None:
        cov = cov + torch.diag(logvar.exp().mean(0))
    return cov


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two DIP terms of a (D, D) covariance: sum of squared off-diagonal entries and
    sum of (diagonal - 1)^2, each 0-d and >= 0; both 0 exactly for the identity."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return off.pow(2).sum(), (diag - 1.0).pow(2).sum()


@dataclass
class DIPVAEConfig(VAEConfig):
    """Settings of :class:`DIPVAE` (Kumar et al. 2018).

    Attributes
    ----------
    dip_type : {"i", "ii"}
        DIP-VAE-I (covariance of mu) or DIP-VAE-II (covariance of q(z)).
    lambda_od : float
        Weight of the off-diagonal penalty, live-tunable in ``LAMBDA_OD_RANGE``.
    lambda_d : float or None
        Weight of the diagonal penalty, live-tunable in ``LAMBDA_D_RANGE``; None is
        ``LAMBDA_D_FACTOR[dip_type] * lambda_od``.
    """

    dip_type: str = "i"
    lambda_od: float = 10.0
    lambda_d: float | None = None


class DIPVAE(VAE):
    """DIP-VAE-I or -II (Kumar et al. 2018): the ELBO plus a covariance penalty; module docstring.

    Parameters
    ----------
    config : DIPVAEConfig
        ``lambda_d`` None is resolved and stored back in ``self.config``.
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    hyper : dict
        ``beta`` (on the KL), ``lambda_od``, ``lambda_d`` and ``lr``.

    Raises
    ------
    ConfigError
        An unknown ``dip_type``, out-of-range weights, or any :class:`VAE` error.
    """

    config_class = DIPVAEConfig

    def __init__(self, config: DIPVAEConfig, data: DataInfo) -> None:
        dip_type = str(config.dip_type).lower()
        if dip_type not in LAMBDA_D_FACTOR:
            raise ConfigError(f"DIP-VAE: dip_type must be 'i' or 'ii', not {config.dip_type!r}")
        lambda_d = config.lambda_d
        if lambda_d is None:
            lambda_d = LAMBDA_D_FACTOR[dip_type] * config.lambda_od
        super().__init__(replace(config, dip_type=dip_type, lambda_d=lambda_d), data)
        try:
            self.hyper["lambda_od"] = HyperParam(
                "lambda_od", 0.0, *LAMBDA_OD_RANGE, doc="weight of the off-diagonal covariance penalty"
            ).with_value(config.lambda_od)
            self.hyper["lambda_d"] = HyperParam(
                "lambda_d", 0.0, *LAMBDA_D_RANGE, doc="weight of the diagonal covariance penalty"
            ).with_value(lambda_d)
        except ConfigError as exc:
            raise ConfigError(f"DIP-VAE: {exc}") from exc

    def regularizer(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl_dim: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``beta * KL + lambda_od * dip_od + lambda_d * dip_d`` (nats per example); logs
        ``dip_od`` and ``dip_d``."""
        cov = latent_covariance(mu, logvar if self.config.dip_type == "ii" else None)
        od, d = dip_penalties(cov)
        penalty = self.h("beta") * kl_dim.sum() + self.h("lambda_od") * od + self.h("lambda_d") * d
        return penalty, {"dip_od": od, "dip_d": d}
