"""beta-TCVAE: the KL term split into index-code MI, total correlation and dimension-wise KL.

Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders". With q(z) = (1/N) sum_n q(z|x_n) the aggregate posterior over the N training
examples, the average KL splits as

    E_x KL(q(z|x) || p(z)) = I_q(x; z)                          index-code MI
                           + KL(q(z) || prod_d q(z_d))           total correlation (TC)
                           + sum_d KL(q(z_d) || p(z_d))          dimension-wise KL

and the loss is ``recon + alpha * MI + beta * TC + gamma * dim_kl`` (the paper's beta-TCVAE:
alpha = gamma = 1, beta = 6 by default here; with all three 1 it is the plain negative ELBO in
expectation).

The densities log q(z) and log q(z_d) are estimated by the paper's minibatch-weighted sampling
(MWS, as in the authors' code): for z_i drawn from q(z|x_i) in a batch of M,

    log q(z_i)   ~ logsumexp_j log q(z_i | x_j)   - log(N M)
    log q(z_id)  ~ logsumexp_j log q(z_id | x_j)  - log(N M)

with N the training-set size (``DataInfo.n_train``). MWS is biased (the true aggregate of a
batch alone would use log M); it is the paper's estimator. The three terms are batch means of
log q(z|x) - log q(z), log q(z) - sum_d log q(z_d) and sum_d log q(z_d) - log p(z), so they add
up to the one-sample Monte Carlo estimate of the KL, mean of log q(z|x) - log p(z), exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.vae.vae import VAE, VAEConfig, gaussian_log_density
from engines.shared.spec import HyperParam

#: Range of the live weights alpha (MI), beta (TC) and gamma (dimension-wise KL).
WEIGHT_RANGE = (0.0, 100.0)


def kl_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index-code MI, total correlation and dimension-wise KL of a batch by minibatch-weighted
    sampling (Chen et al. 2018; module docstring).

    Parameters
    ----------
    z : (M, D) tensor
        One draw z_i ~ q(z|x_i) per example of the batch.
    mu, logvar : (M, D) tensors
        The batch's posteriors q(z|x_j).
    dataset_size : int
        N, the number of training examples the batch was drawn from (>= 1).

    Returns
    -------
    mi, tc, dim_kl : 0-d tensors
        Batch means, nats. Their sum equals the batch mean of log q(z_i|x_i) - log p(z_i), a
        one-sample Monte Carlo estimate of the KL. TC is (up to the MWS constant
        (D - 1) log N) zero when the batch's aggregate posterior is a product over dimensions.
        MI and TC estimates may be negative for small batches.

    Raises
    ------
    ValueError
        Shapes that differ or ``dataset_size`` < 1.
    """
    if z.shape != mu.shape or z.shape != logvar.shape or z.dim() != 2:
        raise ValueError(f"z, mu and logvar must share one (M, D) shape, not {z.shape}, {mu.shape}, {logvar.shape}")
    if dataset_size < 1:
        raise ValueError(f"dataset_size must be at least 1, not {dataset_size}")
    m = z.shape[0]
    log_nm = math.log(dataset_size * m)
    # (M, M, D): log q(z_i,d | x_j), i the sample, j the posterior it is scored under.
    log_q_pair = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_qz_x = log_q_pair.diagonal(dim1=0, dim2=1).T.sum(-1)  # (M,) log q(z_i | x_i)
    log_qz = torch.logsumexp(log_q_pair.sum(-1), dim=1) - log_nm  # (M,)
    log_prod_qzd = (torch.logsumexp(log_q_pair, dim=1) - log_nm).sum(-1)  # (M,)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), 0.0).sum(-1)  # (M,)
    mi = (log_qz_x - log_qz).mean()
    tc = (log_qz - log_prod_qzd).mean()
    dim_kl = (log_prod_qzd - log_pz).mean()
    return mi, tc, dim_kl


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """Settings of :class:`BetaTCVAE` (Chen et al. 2018).

    Attributes
    ----------
    alpha : float
        Weight of the index-code MI, live-tunable in ``WEIGHT_RANGE``.
    beta : float
        Weight of the total correlation (the paper's beta), live-tunable in ``WEIGHT_RANGE``.
    gamma : float
        Weight of the dimension-wise KL, live-tunable in ``WEIGHT_RANGE``.
    """

    beta: float = 6.0
    alpha: float = 1.0
    gamma: float = 1.0


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al. 2018): recon + alpha * MI + beta * TC + gamma * dim_kl; module docstring.

    Parameters
    ----------
    config : BetaTCVAEConfig
    data : DataInfo
        Images (C, H, W) in [0, 1] or 2-D points; ``data.n_train`` is the N of the MWS estimator.

    Attributes
    ----------
    hyper : dict
        ``alpha``, ``beta`` (on the TC), ``gamma`` and ``lr``.

    Raises
    ------
    ConfigError
        Weights outside ``WEIGHT_RANGE``, or any :class:`VAE` error.
    """

    config_class = BetaTCVAEConfig

    def __init__(self, config: BetaTCVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        docs = {
            "alpha": "weight of the index-code mutual information",
            "beta": "weight of the total correlation",
            "gamma": "weight of the dimension-wise KL",
        }
        try:
            for name, doc in docs.items():
                self.hyper[name] = HyperParam(name, 0.0, *WEIGHT_RANGE, doc=doc).with_value(getattr(config, name))
        except ConfigError as exc:
            raise ConfigError(f"beta-TCVAE: {exc}") from exc
        self.dataset_size = max(1, int(data.n_train))

    def regularizer(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl_dim: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``alpha * mi + beta * tc + gamma * dim_kl`` by :func:`kl_decomposition` (nats per example),
        logging ``mi``, ``tc`` and ``dim_kl`` (nats)."""
        mi, tc, dim_kl = kl_decomposition(z, mu, logvar, self.dataset_size)
        penalty = self.h("alpha") * mi + self.h("beta") * tc + self.h("gamma") * dim_kl
        return penalty, {"mi": mi, "tc": tc, "dim_kl": dim_kl}
