"""Generative adversarial networks: GAN, WGAN, WGAN-GP and SNGAN in one engine, with PacGAN packing.

One :class:`GAN` class covers four objectives, chosen by ``GANConfig.loss`` (the registry names in
brackets set it):

- ``"gan"`` [``gan``]: Goodfellow et al. 2014, "Generative Adversarial Nets". The discriminator
  D(x) = sigmoid(logit) is trained on the binary cross-entropy; the generator on the
  non-saturating loss -log D(G(z)) (``g_loss="ns"``, the paper's practical advice) or on the
  minimax loss log(1 - D(G(z))) (``g_loss="minimax"``). DCGAN networks and Adam settings
  (Radford, Metz & Chintala 2016).
- ``"wgan"`` [``wgan``]: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN". A critic f trained to
  maximise E f(x) - E f(G(z)) with every critic weight clipped to [-clip, clip] after each update;
  RMSprop.
- ``"wgan-gp"`` [``wgan-gp``]: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs". The
  clipping replaced by the penalty lambda * E (||grad f(x_hat)||_2 - 1)^2 at random interpolates
  x_hat of real and generated samples; no batch norm in the critic (layer norm by default); Adam
  (0.5, 0.9).
- ``"hinge"`` [``sngan``]: Miyato et al. 2018, "Spectral Normalization for GANs". Spectral
  normalisation (``torch.nn.utils.parametrizations.spectral_norm``) on every critic layer, the hinge
  loss E relu(1 - f(x)) + E relu(1 + f(G(z))) for the critic and -E f(G(z)) for the generator.

Packing (Lin et al. 2018, "PacGAN"): the critic judges m samples at once, concatenated along the
channels (images) or features (points), all real or all generated. ``pack`` (m) is a live
hyperparameter in [1, ``pack_max``]: the critic is built once for ``pack_max`` slots and the
slots beyond m are filled with zeros. A zero slot contributes only through the first layer's bias,
so a critic with m of its slots in use is exactly an m-packed PacGAN critic (the weights of unused
slots get zero gradient); changing m keeps the critic's training and changes no tensor shape (so
checkpoints and the host's weight snapshot are unaffected). The cost is a first layer
``pack_max`` times wider. A conditional critic (``cond_width`` > 0, e.g. the cGAN's one-hot
labels) gets its condition packed the same way: the packed input is ``[x_1 .. x_slots, c_1 ..
c_slots]`` along channels (features), each example's condition in its own slot (broadcast to
constant planes for images), zeros beyond m.

Critic updates: each :meth:`GAN.training_step` makes ``n_critic`` critic updates and then one
generator update. The trainer hands over one batch per step, so every critic update reuses that
real batch, each with fresh noise z (common in simple implementations; a step's data therefore
counts once, and "steps" count generator updates).

Networks: images use the DCGAN stacks of :mod:`engines.lib.nets` (generator: :func:`conv_decoder`
then a sigmoid, so samples lie in [0, 1]; critic: :func:`conv_encoder` with leaky ReLU to one
logit, no sigmoid), initialised N(0, 0.02) as in DCGAN. 2-D points use MLPs as in PacGAN's 2-D
experiments: ``depth`` hidden layers of ``hidden`` ReLU units for both, a linear generator output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from engines.models.base import Engine, EngineConfig
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ConfigError
from engines.lib.nets import activation, conv_decoder, conv_encoder, first_layer, mlp
from engines.shared.spec import HyperParam, LatentSpec

LOSSES = ("gan", "wgan", "wgan-gp", "hinge")
#: Per-loss defaults for what the config leaves None: optimiser, learning rate for images and for
#: 2-D points (wgan-gp at 1e-3 oscillated on the 8-mode ring; 3e-4 held all 8 modes from step
#: 750 to 2000), Adam betas, critic updates per generator update, critic normalisation, spectral
#: normalisation.
LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": dict(optimizer="adam", lr=2e-4, points_lr=1e-3, beta1=0.5, beta2=0.999, n_critic=1, d_norm="batch",
                spectral=False),
    "wgan": dict(optimizer="rmsprop", lr=5e-5, points_lr=1e-4, beta1=0.5, beta2=0.999, n_critic=5, d_norm="batch",
                 spectral=False),
    "wgan-gp": dict(optimizer="adam", lr=1e-4, points_lr=3e-4, beta1=0.5, beta2=0.9, n_critic=5, d_norm="layer",
                    spectral=False),
    "hinge": dict(optimizer="adam", lr=2e-4, points_lr=1e-3, beta1=0.5, beta2=0.999, n_critic=1, d_norm="none",
                  spectral=True),
}
#: Most critic updates per step and largest pack the live controls allow.
MAX_N_CRITIC, MAX_PACK = 20, 8


# -- losses and helpers, as plain functions ----------------------------------------------------
def critic_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The critic's (discriminator's) loss from raw scores of real and generated samples.

    Parameters
    ----------
    loss : {"gan", "wgan", "wgan-gp", "hinge"}
    real, fake : (N,) tensors
        Critic outputs: logits for ``"gan"``, unbounded critic values otherwise.

    Returns
    -------
    0-d tensor. ``"gan"``: -E log D(x) - E log(1 - D(G(z))) in nats (softplus form);
    ``"wgan"``/``"wgan-gp"``: E f(G(z)) - E f(x) (no penalty); ``"hinge"``: E relu(1 - f(x)) +
    E relu(1 + f(G(z))).
    """
    if loss == "gan":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return fake.mean() - real.mean()


def generator_loss(loss: str, fake: torch.Tensor, g_loss: str = "ns") -> torch.Tensor:
    """The generator's loss from critic scores (N,) of generated samples, 0-d.

    ``"gan"``: -E log D(G(z)) (``g_loss="ns"``, non-saturating) or E log(1 - D(G(z)))
    (``"minimax"``); every other loss: -E f(G(z)).
    """
    if loss == "gan":
        return F.softplus(-fake).mean() if g_loss == "ns" else -F.softplus(fake).mean()
    return -fake.mean()


def pack_inputs(x: torch.Tensor, m: int, slots: int) -> torch.Tensor:
    """Stack groups of m consecutive examples for a PacGAN critic with ``slots`` slots.

    Parameters
    ----------
    x : (N, C, H, W) or (N, F) tensor
    m : int
        Examples per group, 1 <= m <= slots; a last incomplete group is dropped.
    slots : int
        Slots the critic was built for; slots beyond m are zeros.

    Returns
    -------
    (N // m, slots * C, H, W) or (N // m, slots * F) tensor.
    """
    n = (x.shape[0] // m) * m
    g = x[:n].reshape(n // m, m * x.shape[1], *x.shape[2:])
    if m < slots:
        g = torch.cat([g, g.new_zeros(g.shape[0], (slots - m) * x.shape[1], *x.shape[2:])], 1)
    return g


def gradient_penalty(
    critic: Any, real: torch.Tensor, fake: torch.Tensor, m: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The WGAN-GP penalty E (||grad_x_hat f(x_hat)||_2 - 1)^2 (Gulrajani et al. 2017), 0-d.

    x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] per example. With packing the critic
    sees groups of m examples and the norm is taken over each group's packed input. A condition
    the critic also reads (cGAN labels, closed over by ``critic``) is held fixed: the gradient is
    with respect to x_hat only.

    Parameters
    ----------
    critic : callable
        (N, ...) -> (N // m,) scores, differentiable in its input (it packs internally).
    real, fake : (N, ...) tensors of the same shape, N divisible by m
    m : int
        Pack size.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.reshape(grad.shape[0] // m, -1).norm(2, dim=1)
    return (norms - 1.0).pow(2).mean()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016): conv and linear weights N(0, 0.02), biases 0,
    batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer of ``module``."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m)
    return module


# -- the model ---------------------------------------------------------------------------------
@dataclass
class GANConfig(EngineConfig):
    """Settings of :class:`GAN`. None means "chosen from the loss and the data" (``LOSS_DEFAULTS``).

    Attributes
    ----------
    latent_dim : int
        Width of the noise z.
    loss : {"gan", "wgan", "wgan-gp", "hinge"}
        The objective (module docstring).
    g_loss : {"ns", "minimax"}
        Generator loss of ``loss="gan"``: non-saturating or the original minimax.
    optimizer : {"adam", "rmsprop"} or None
        Optimiser of both networks.
    g_lr, d_lr : float or None
        Learning rates of the generator and the critic, live-tunable in [1e-6, 0.1].
    beta1, beta2 : float or None
        Adam's betas.
    n_critic : int or None
        Critic updates per generator update, live-tunable in [1, MAX_N_CRITIC].
    clip : float
        WGAN weight clipping bound, live-tunable (``loss="wgan"`` only).
    gp_lambda : float
        Weight of the gradient penalty, live-tunable (``loss="wgan-gp"`` only).
    pack, pack_max : int
        PacGAN pack size m (live-tunable in [1, pack_max]) and the slots the critic is built for.
    spectral_norm : bool or None
        Spectral normalisation on every critic layer.
    d_norm, g_norm : {"none", "batch", "layer"} or None
        Normalisation in the image critic and generator (ignored for points).
    width : int
        Channels of the first conv stages of both image networks.
    hidden : int or None
        Hidden width: the critic's linear layer for images (default 256), the MLP width for
        points (default 128).
    depth : int
        Hidden layers of the MLPs for points.
    """

    latent_dim: int = 64
    loss: str = "gan"
    g_loss: str = "ns"
    optimizer: str | None = None
    g_lr: float | None = None
    d_lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    clip: float = 0.01
    gp_lambda: float = 10.0
    pack: int = 1
    pack_max: int = 4
    spectral_norm: bool | None = None
    d_norm: str | None = None
    g_norm: str | None = "batch"
    width: int = 32
    hidden: int | None = None
    depth: int = 4


def resolve_config(config: GANConfig, data: DataInfo, who: str = "GAN") -> GANConfig:
    """``config`` with the loss- and data-dependent defaults filled in.

    Raises
    ------
    ConfigError
        Unknown loss, generator loss, optimiser or normalisation; data neither square images nor
        points; sizes or ranges out of bounds.
    """
    if config.loss not in LOSSES:
        raise ConfigError(f"{who}: loss must be one of {', '.join(LOSSES)}, not {config.loss!r}")
    if config.g_loss not in ("ns", "minimax"):
        raise ConfigError(f"{who}: g_loss must be 'ns' or 'minimax', not {config.g_loss!r}")
    if data.kind not in ("image", "points"):
        raise ConfigError(f"{who}: unknown data kind {data.kind!r} of {data.spec}")
    if data.kind == "image" and (len(data.shape) != 3 or data.shape[1] != data.shape[2]):
        raise ConfigError(f"{who}: images must be square (C, H, W), not {data.shape} ({data.spec})")
    if config.latent_dim < 1 or config.width < 1 or config.depth < 1:
        raise ConfigError(f"{who}: latent_dim, width and depth must be at least 1")
    if not 1 <= config.pack_max <= MAX_PACK or not 1 <= config.pack <= config.pack_max:
        raise ConfigError(f"{who}: need 1 <= pack ({config.pack}) <= pack_max ({config.pack_max}) <= {MAX_PACK}")
    d = LOSS_DEFAULTS[config.loss]
    optimizer = config.optimizer or d["optimizer"]
    if optimizer not in ("adam", "rmsprop"):
        raise ConfigError(f"{who}: optimizer must be 'adam' or 'rmsprop', not {optimizer!r}")
    lr = d["points_lr"] if data.kind == "points" else d["lr"]
    d_norm = d["d_norm"] if config.d_norm is None else config.d_norm
    g_norm = "none" if config.g_norm is None else config.g_norm
    for norm in (d_norm, g_norm):
        if norm not in ("none", "batch", "layer"):
            raise ConfigError(f"{who}: normalisation must be none, batch or layer, not {norm!r}")
    if config.loss == "wgan-gp" and d_norm == "batch":
        raise ConfigError(f"{who}: the gradient penalty is per example; use d_norm='layer' or 'none', not batch")
    hidden = config.hidden if config.hidden is not None else (128 if data.kind == "points" else 256)
    if hidden < 1:
        raise ConfigError(f"{who}: hidden must be at least 1, not {hidden}")
    return replace(
        config,
        optimizer=optimizer,
        g_lr=lr if config.g_lr is None else config.g_lr,
        d_lr=lr if config.d_lr is None else config.d_lr,
        beta1=d["beta1"] if config.beta1 is None else config.beta1,
        beta2=d["beta2"] if config.beta2 is None else config.beta2,
        n_critic=d["n_critic"] if config.n_critic is None else config.n_critic,
        spectral_norm=d["spectral"] if config.spectral_norm is None else config.spectral_norm,
        d_norm=d_norm,
        g_norm=g_norm,
        hidden=hidden,
    )


class GAN(Engine):
    """GAN, WGAN, WGAN-GP and SNGAN (module docstring), the base of the GAN family.

    Parameters
    ----------
    config : GANConfig
        Settings; the resolved values are stored back in ``self.config``.
    data : DataInfo
        Square images (C, H, W) in [0, 1] or 2-D points.

    Attributes
    ----------
    generator : nn.Module
        z (N, latent.dim) -> (N, C, H, W) in [0, 1] (sigmoid output) or (N, 2) points.
    critic : nn.Sequential
        ``critic[0]`` (the body) maps packed input to features (N // m, F); ``critic[1]`` (the
        head) maps them to one score per packed group: a logit for ``loss="gan"``, no sigmoid.
    opt_g, opt_d : torch.optim.Optimizer
        Optimisers of the generator and of the critic.
    critic_updates : int
        Critic updates made so far.
    hyper : dict
        ``g_lr``, ``d_lr`` (log scale), ``n_critic`` (integer), ``pack`` (integer, when
        ``pack_max`` > 1), ``clip`` (wgan), ``gp_lambda`` (wgan-gp).

    Raises
    ------
    ConfigError
        See :func:`resolve_config`.
    """

    family = "gan"
    config_class = GANConfig

    def __init__(self, config: GANConfig, data: DataInfo) -> None:
        config = resolve_config(config, data, type(self).__name__)
        super().__init__(config, data)
        self.points = data.kind == "points"
        self.latent = self.build_latent()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.generator = self.build_generator(self.latent.dim)
            self.critic = self.build_critic(config.pack_max * (self._features() + self.cond_width()))
            self.build_extra()
            if not self.points:
                dcgan_init(self)
        if config.spectral_norm:
            apply_spectral_norm(self.critic)
        self.critic_updates = 0
        self.hyper = self.build_hyper()
        self.opt_g = self._optimizer(self.generator.parameters(), config.g_lr)
        self.opt_d = self._optimizer(self.critic_parameters(), config.d_lr)

    # -- construction (hooks for the conditional and InfoGAN subclasses) -----------------------
    def build_latent(self) -> LatentSpec:
        """The LatentSpec: ``latent_dim`` Gaussian noise dimensions z0, z1, ..."""
        return LatentSpec.gaussian(self.config.latent_dim)

    def cond_width(self) -> int:
        """Width K of the condition the critic sees besides each example x (0: unconditional);
        the critic's input has ``pack_max * (C + K)`` channels (features)."""
        return 0

    def build_extra(self) -> None:
        """Build networks beyond the generator and critic (InfoGAN's Q head); none here."""

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters updated by the critic optimiser."""
        return list(self.critic.parameters())

    def _features(self) -> int:
        return 2 if self.points else self.data.shape[0]

    def build_generator(self, in_features: int) -> nn.Module:
        """z (N, in_features) -> (N, C, H, W) in [0, 1] or (N, 2)."""
        c = self.config
        if self.points:
            return mlp(in_features, 2, c.hidden, c.depth)
        decoder = conv_decoder(in_features, self.data.shape[0], self.data.shape[-1], c.width, hidden=0, norm=c.g_norm)
        return nn.Sequential(decoder, nn.Sigmoid())

    def build_critic(self, in_channels: int) -> nn.Sequential:
        """(body, head): packed input with ``in_channels`` channels (or features) -> (N, 1)."""
        c = self.config
        if self.points:
            body = nn.Sequential(mlp(in_channels, c.hidden, c.hidden, c.depth - 1), activation("relu"))
        else:
            size = self.data.shape[-1]
            enc = conv_encoder(in_channels, size, c.hidden, c.width, hidden=0, act="leaky_relu", norm=c.d_norm)
            body = nn.Sequential(enc, activation("leaky_relu"))
        return nn.Sequential(body, nn.Linear(c.hidden, 1))

    def build_hyper(self) -> dict[str, HyperParam]:
        c = self.config
        hyper = {
            "g_lr": HyperParam("g_lr", c.g_lr, 1e-6, 1e-1, log=True, doc="generator learning rate"),
            "d_lr": HyperParam("d_lr", c.d_lr, 1e-6, 1e-1, log=True, doc="critic learning rate"),
            "n_critic": HyperParam(
                "n_critic", c.n_critic, 1, MAX_N_CRITIC, integer=True, doc="critic updates per generator update"
            ),
        }
        if c.pack_max > 1:
            hyper["pack"] = HyperParam("pack", c.pack, 1, c.pack_max, integer=True, doc="PacGAN: samples per critic input")
        if c.loss == "wgan":
            hyper["clip"] = HyperParam("clip", c.clip, 1e-4, 1.0, log=True, doc="WGAN: critic weight clipping bound")
        if c.loss == "wgan-gp":
            hyper["gp_lambda"] = HyperParam("gp_lambda", c.gp_lambda, 0.0, 100.0, doc="WGAN-GP: gradient penalty weight")
        for name, hp in hyper.items():
            hyper[name] = hp.with_value(hp.value)  # validates the config's value
        return hyper

    def _optimizer(self, params: Any, lr: float) -> torch.optim.Optimizer:
        if self.config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=(self.config.beta1, self.config.beta2))

    # -- hyperparameters and optimisers --------------------------------------------------------
    def on_hyper_changed(self, name: str, value: float) -> None:
        if name in ("g_lr", "d_lr"):
            for group in (self.opt_g if name == "g_lr" else self.opt_d).param_groups:
                group["lr"] = value
        elif name == "pack":
            self.config.pack = int(value)  # so a checkpoint rebuilds with the current pack

    def optimizer_states(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    # -- pieces --------------------------------------------------------------------------------
    def draw_z(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Generator inputs for a training batch of n; ``y`` (labels) is used by subclasses."""
        return self.prior_sample(n)

    def real_cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        """The critic's condition for real examples (N, cond_width), or None."""
        return None

    def fake_cond(self, z: torch.Tensor) -> torch.Tensor | None:
        """The critic's condition for examples generated from z, or None."""
        return None

    def aux_loss(self, z: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """An extra loss on generated examples from the critic body's features (InfoGAN); None here."""
        return None

    def pack_size(self) -> int:
        return int(self.h("pack")) if "pack" in self.hyper else 1

    def discriminate(
        self, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic scores and body features of x (N, ...) packed m at a time.

        Parameters
        ----------
        x : (N, C, H, W) or (N, F) tensor
        cond : (N, K) tensor or None
            Per-example condition (``cond_width`` K), packed with its example: slot i of a group
            carries example i's condition, zeros beyond m; broadcast to (K, H, W) planes for images.

        Returns
        -------
        scores : (N // m,) tensor
            Logits (``loss="gan"``) or critic values.
        feats : (N // m, F) tensor
            The body's output.
        """
        m = self.pack_size()
        xp = pack_inputs(x, m, self.config.pack_max)
        if cond is not None:
            cond = pack_inputs(cond.to(xp.dtype), m, self.config.pack_max)
            if xp.dim() == 4:
                cond = cond[:, :, None, None].expand(-1, -1, xp.shape[2], xp.shape[3])
            xp = torch.cat([xp, cond], 1)
        feats = self.critic[0](xp)
        return self.critic[1](feats).squeeze(-1), feats

    def _prepare(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.capabilities.conditional:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ConfigError(f"{self.name or type(self).__name__} needs (x, y) batches with class labels")
            x, y = batch
            return x.to(device=self.device, dtype=torch.float32), y.to(device=self.device, dtype=torch.int64)
        return batch.to(device=self.device, dtype=torch.float32), None

    # -- the contract -------------------------------------------------------------------------
    def training_step(self, batch: Any, step: int) -> dict[str, float]:
        """``n_critic`` critic updates on the batch (fresh z each), then one generator update.

        Parameters
        ----------
        batch : (B, C, H, W) in [0, 1] or (B, 2); ``(x, y)`` with labels y (B,) int64 when
            declared ``conditioning`` ``labels``. B must be at least the pack size.
        step : int
            Global step (unused).

        Returns
        -------
        dict of str to float
            ``d_loss`` and ``g_loss`` (nats for ``loss="gan"``); ``d_real`` and ``d_fake``: mean
            D(x) and D(G(z)) as probabilities for ``loss="gan"``, mean raw critic values otherwise;
            ``w_dist`` (wgan, wgan-gp): mean critic(real) - critic(fake); ``gp`` (wgan-gp). Critic
            terms are averaged over the step's critic updates.

        Raises
        ------
        ConfigError
            A batch smaller than the pack size, or a missing label for a conditional engine.
        """
        self.train()
        x, y = self._prepare(batch)
        m, c = self.pack_size(), self.config
        if x.shape[0] < m:
            raise ConfigError(f"{self.name}: a batch of {x.shape[0]} is smaller than the pack size {m}")
        n_critic = int(self.h("n_critic"))
        names = ["d_loss", "d_real", "d_fake"] + (["w_dist"] if c.loss in ("wgan", "wgan-gp") else [])
        names += ["gp"] if c.loss == "wgan-gp" else []
        total: torch.Tensor | None = None
        aux_names: list[str] = []
        for _ in range(n_critic):
            z = self.draw_z(x.shape[0], y)
            with torch.no_grad():
                fake = self.generator(z)
            real_s, _ = self.discriminate(x, self.real_cond(y))
            fake_s, feats = self.discriminate(fake, self.fake_cond(z))
            loss = critic_loss(c.loss, real_s, fake_s)
            d_loss = loss
            logged = [d_loss.detach()]
            if c.loss == "gan":
                logged += [torch.sigmoid(real_s).mean().detach(), torch.sigmoid(fake_s).mean().detach()]
            else:
                logged += [real_s.mean().detach(), fake_s.mean().detach()]
            if c.loss in ("wgan", "wgan-gp"):
                logged.append(logged[1] - logged[2])
            if c.loss == "wgan-gp":
                n = (x.shape[0] // m) * m
                cond = self.real_cond(y)
                gp = gradient_penalty(lambda t: self.discriminate(t, cond if cond is None else cond[:n])[0],
                                      x[:n], fake[:n], m)
                loss = loss + self.h("gp_lambda") * gp
                logged.append(gp.detach())
            aux = self.aux_loss(z, feats)
            if aux is not None:
                loss = loss + aux[0]
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            if c.loss == "wgan":
                bound = self.h("clip")
                with torch.no_grad():
                    for p in self.critic.parameters():
                        p.clamp_(-bound, bound)
            self.critic_updates += 1
            stacked = torch.stack(logged)
            total = stacked if total is None else total + stacked
        assert total is not None
        # the generator update
        z = self.draw_z(x.shape[0], y)
        fake_s, feats = self.discriminate(self.generator(z), self.fake_cond(z))
        g_loss = generator_loss(c.loss, fake_s, c.g_loss)
        loss = g_loss
        parts = [total / n_critic, g_loss.detach()[None]]
        aux = self.aux_loss(z, feats)
        if aux is not None:
            loss = loss + aux[0]
            aux_names = list(aux[1])
            parts.append(torch.stack([v.detach() for v in aux[1].values()]))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        values = torch.cat(parts).tolist()  # the one host sync
        terms = dict(zip(names, values[: len(names)]))
        terms["g_loss"] = values[len(names)]
        terms.update(zip(aux_names, values[len(names) + 1 :]))
        return terms

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (N, C, H, W) in [0, 1] or (N, 2) points in data units, for z (N, latent.dim)."""
        return self.generator(z.to(device=self.device, dtype=torch.float32))

    @torch.no_grad()
    def latent_features(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's first-layer activations (N, F) for z (N, latent.dim): where GANSpace's PCA runs."""
        return first_layer(self.generator, z.to(device=self.device, dtype=torch.float32))

    @torch.no_grad()
    def critic_score(self, x: torch.Tensor) -> torch.Tensor:
        """Critic scores (N // m,) of data x, packed m = ``pack`` at a time (unconditional models)."""
        return self.discriminate(x.to(device=self.device, dtype=torch.float32))[0]

