"""The conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

Generator and discriminator both see the class label y. The generator's input is z = [noise,
one-hot(y)]: the latent space is ``latent_dim`` Gaussian noise dimensions followed by a one-hot
block of the data's classes (kind ``"categorical"``, group ``"class"``, one dimension per class
name), so the Explore sliders include a class picker. :meth:`CGAN.decode` accepts soft mixes in
the block too (interpolating between two one-hots cross-fades the classes). The discriminator
gets the label as extra constant input channels (images: K one-hot planes concatenated to x;
points: K features), the concatenation form of the paper. Generated training examples take the
labels of the real batch, so the class frequencies match the data's.

Any of the :class:`engines.models.gan.gan.GAN` losses can be used (``loss``, default ``"gan"``),
including the gradient penalty (``wgan-gp``: the gradient is taken with respect to the examples,
the labels held fixed). Training batches are ``(x, y)`` tuples (it declares ``conditioning`` ``labels``).

Packing (PacGAN, Lin et al. 2018) works as for the unconditional GAN (``pack`` m live in [1,
``pack_max``]), with each example's one-hot label packed beside it: a packed group of m examples
is ``[x_1 .. x_pack_max, y_1 .. y_pack_max]`` along channels (features), zeros in the slots
beyond m, so the critic judges m (example, label) pairs at once. Generated examples of a group
carry the labels of the real examples in the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.models.gan.gan import GAN, GANConfig
from engines.shared.spec import LatentDim, LatentSpec


@dataclass
class CGANConfig(GANConfig):
    """Settings of :class:`CGAN`: those of :class:`GANConfig`; ``latent_dim`` counts the noise
    dimensions only (the class block adds one per class). ``pack_max`` slots each hold an example
    and its one-hot label."""


def one_hot(y: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) int64 labels in [0, k) -> (N, k) float32 one-hot rows, without a host sync."""
    return torch.zeros(y.shape[0], k, device=y.device).scatter_(1, y[:, None], 1.0)


class CGAN(GAN):
    """Conditional GAN (Mirza & Osindero 2014).

    Parameters
    ----------
    config : CGANConfig
    data : DataInfo
        Labelled images or points: ``data.class_names`` must name at least two classes.

    Attributes
    ----------
    n_classes : int
        K, the width of the one-hot block at the end of z.
    critic : nn.Sequential
        As :class:`GAN`'s, its input ``pack_max * (C + K)`` channels (images) or
        ``pack_max * (2 + K)`` features (points): the packed examples, then their packed labels.
    hyper : dict
        :class:`GAN`'s; ``pack`` (when ``pack_max`` > 1) counts (example, label) pairs per
        critic input.

    Raises
    ------
    ConfigError
        Data without class names, or any :class:`GAN` configuration error.
    """

    config_class = CGANConfig

    def __init__(self, config: CGANConfig, data: DataInfo) -> None:
        if not data.class_names or len(data.class_names) < 2:
            raise ConfigError(f"cgan needs labelled data with at least two classes; {data.spec} has no class names")
        self.n_classes = len(data.class_names)
        super().__init__(config, data)
        if "pack" in self.hyper:
            self.hyper["pack"] = replace(self.hyper["pack"], doc="PacGAN: (example, label) pairs per critic input")

    def build_latent(self) -> LatentSpec:
        """Noise z0.. (Gaussian) then one categorical dimension per class name (group ``"class"``)."""
        noise = LatentSpec.gaussian(self.config.latent_dim).dims
        block = tuple(LatentDim(str(n), "categorical", 0.0, 1.0, "class") for n in self.data.class_names)
        return LatentSpec(noise + block)

    def cond_width(self) -> int:
        return self.n_classes

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent.dim): standard normal noise and the one-hot of a uniformly drawn class."""
        noise = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        y = torch.randint(0, self.n_classes, (n,), generator=generator, device=self.device)
        return torch.cat([noise, one_hot(y, self.n_classes)], 1)

    def draw_z(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Noise with the one-hot of the real batch's labels y (N,)."""
        if y is None:
            return self.prior_sample(n)
        noise = torch.randn(n, self.config.latent_dim, device=self.device)
        return torch.cat([noise, one_hot(y, self.n_classes)], 1)

    def real_cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None if y is None else one_hot(y, self.n_classes)

    def fake_cond(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, self.config.latent_dim :]

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, latent.dim) -> noise (N, latent_dim) and class weights (N, K) (one-hot or soft)."""
        return z[:, : self.config.latent_dim], z[:, self.config.latent_dim :]

    @torch.no_grad()
    def critic_score(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Critic scores (N // m,) of examples x (N, ...) with labels y (N,) int64, packed m =
        ``pack`` (example, label) pairs at a time.

        Raises
        ------
        ConfigError
            y missing or not of shape (N,).
        """
        if y is None or y.shape != x.shape[:1]:
            raise ConfigError(f"{self.name or 'cgan'}: critic_score needs labels y of shape ({x.shape[0]},)")
        y = y.to(device=self.device, dtype=torch.int64)
        return self.discriminate(x.to(device=self.device, dtype=torch.float32), one_hot(y, self.n_classes))[0]

    @torch.no_grad()
    def decode_class(self, noise: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """G([noise, one-hot(y)]) for noise (N, latent_dim) and labels y (N,) int64."""
        y = y.to(device=self.device, dtype=torch.int64)
        return self.decode(torch.cat([noise.to(self.device, torch.float32), one_hot(y, self.n_classes)], 1))
