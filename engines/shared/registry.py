"""The model registry: name -> engine class, family and a one-line description.

Entries are import paths so that listing the models (the window does) never loads torch.
Adding a model is adding one file under ``engines/models/`` and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from typing import Any

from engines.shared.capabilities import Capabilities
from engines.shared.errors import ConfigError


@dataclass(frozen=True)
class ModelEntry:
    """One registry line: ``target`` is ``"module:Class"`` of an :class:`engines.models.base.Engine`.

    ``capabilities`` is the model's declaration (:class:`~engines.shared.capabilities.Capabilities`):
    the window reads it from here before a model is built, and from ``Ready`` after.
    """

    name: str
    family: str
    target: str
    description: str
    defaults: tuple[tuple[str, Any], ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)


def _vae(*hyper: str) -> Capabilities:
    """What every VAE here declares; ``hyper``: its live hyperparameters beside ``lr``."""
    return Capabilities(latent=("gaussian",), encoder="amortised", likelihood=("elbo", "iwae"),
                        extras=("latent_kl",), hyper=("lr", *hyper), options=("arch",))


def _flow(*hyper: str) -> Capabilities:
    """What every normalizing flow here declares: z has the data's shape (an image, or a 2-D point), an exact
    inverse and an exact log-likelihood; ``temperature`` scales the prior's std when sampling."""
    return Capabilities(latent=("image", "gaussian"), encoder="exact", likelihood=("exact",),
                        hyper=("lr", "temperature", *hyper))


def _autoregressive(*hyper: str) -> Capabilities:
    """What every autoregressive model here declares: no latent, an exact likelihood, pixel-by-pixel sampling."""
    return Capabilities(latent=("none",), likelihood=("exact",), sampling="autoregressive", hyper=("lr", *hyper))


def _gan(latent: tuple[str, ...] = ("gaussian",), conditioning: str = "none", *hyper: str) -> Capabilities:
    """What every GAN here declares; ``pack``, ``clip`` and ``gp_lambda`` are live where the config has them."""
    return Capabilities(latent=latent, conditioning=conditioning, extras=("critic_map", "pack"),
                        hyper=("g_lr", "d_lr", "n_critic", "pack", "clip", "gp_lambda", *hyper))


MODELS: dict[str, ModelEntry] = {e.name: e for e in [
    ModelEntry("vae", "vae", "engines.models.vae.vae:VAE", "Variational autoencoder (Kingma & Welling 2014)",
               capabilities=_vae("beta")),
    ModelEntry("beta-vae", "vae", "engines.models.vae.vae:VAE",
               "beta-VAE: the ELBO with the KL weighted by beta (Higgins et al. 2017)", (("beta", 4.0),),
               capabilities=_vae("beta")),
    ModelEntry("annealed-vae", "vae", "engines.models.vae.annealed_vae:AnnealedVAE",
               "beta-VAE with a linearly increasing KL capacity C (Burgess et al. 2018)",
               capabilities=_vae("gamma", "c_max", "ramp_steps")),
    ModelEntry("beta-tcvae", "vae", "engines.models.vae.beta_tcvae:BetaTCVAE",
               "beta-TCVAE: KL split into MI, total correlation and dimension-wise KL (Chen et al. 2018)",
               capabilities=_vae("alpha", "beta", "gamma")),
    ModelEntry("factor-vae", "vae", "engines.models.vae.factor_vae:FactorVAE",
               "FactorVAE: ELBO plus a discriminator's total-correlation estimate (Kim & Mnih 2018)",
               capabilities=_vae("beta", "gamma", "d_lr")),
    ModelEntry("dip-vae", "vae", "engines.models.vae.dip_vae:DIPVAE",
               "DIP-VAE-I/II: ELBO plus a latent covariance penalty (Kumar et al. 2018)",
               capabilities=_vae("beta", "lambda_od", "lambda_d")),
    ModelEntry("gan", "gan", "engines.models.gan.gan:GAN",
               "GAN, non-saturating loss, DCGAN networks (Goodfellow et al. 2014)", capabilities=_gan()),
    ModelEntry("wgan", "gan", "engines.models.gan.gan:GAN",
               "Wasserstein GAN with weight clipping (Arjovsky et al. 2017)", (("loss", "wgan"),), capabilities=_gan()),
    ModelEntry("wgan-gp", "gan", "engines.models.gan.gan:GAN",
               "WGAN with gradient penalty (Gulrajani et al. 2017)", (("loss", "wgan-gp"),), capabilities=_gan()),
    ModelEntry("sngan", "gan", "engines.models.gan.gan:GAN",
               "Spectrally normalised GAN, hinge loss (Miyato et al. 2018)", (("loss", "hinge"),), capabilities=_gan()),
    ModelEntry("cgan", "gan", "engines.models.gan.cgan:CGAN",
               "Conditional GAN on labelled data (Mirza & Osindero 2014)",
               capabilities=_gan(("gaussian", "categorical"), "labels")),
    ModelEntry("infogan", "gan", "engines.models.gan.infogan:InfoGAN",
               "InfoGAN: interpretable codes by mutual information (Chen et al. 2016)",
               capabilities=_gan(("gaussian", "categorical", "uniform"), "none", "mi_lambda")),
    ModelEntry("vae-iaf", "vae", "engines.models.vae.vae_iaf:IAFVAE",
               "VAE with an inverse autoregressive flow posterior (Kingma et al. 2016)",
               capabilities=Capabilities(latent=("gaussian",), encoder="amortised", likelihood=("elbo", "iwae"),
                                         hyper=("lr", "beta"), options=("arch",))),  # no latent_kl: the flow mixes the dimensions
    ModelEntry("planar", "flow", "engines.models.flow.planar:PlanarFlow",
               "Planar flow fitted as a density (Rezende & Mohamed 2015)", capabilities=_flow()),
    ModelEntry("nice", "flow", "engines.models.flow.nice:NICE",
               "NICE: additive coupling layers and a diagonal scaling (Dinh et al. 2015)", capabilities=_flow()),
    ModelEntry("realnvp", "flow", "engines.models.flow.realnvp:RealNVP",
               "RealNVP: affine coupling, checkerboard and channel masks, multi-scale (Dinh et al. 2017)",
               capabilities=_flow()),
    ModelEntry("glow", "flow", "engines.models.flow.glow:Glow",
               "Glow: actnorm, invertible 1x1 convolutions, affine coupling (Kingma & Dhariwal 2018)",
               capabilities=_flow()),
    ModelEntry("maf", "flow", "engines.models.flow.maf:MAF",
               "Masked autoregressive flow on MADE blocks (Papamakarios et al. 2017)", capabilities=_flow()),
    ModelEntry("fvsbn", "autoregressive", "engines.models.autoregressive.fvsbn:FVSBN",
               "Fully visible sigmoid belief net (Frey 1998)", capabilities=_autoregressive()),
    ModelEntry("nade", "autoregressive", "engines.models.autoregressive.nade:NADE",
               "NADE: neural autoregressive density estimator (Larochelle & Murray 2011)",
               capabilities=_autoregressive()),
    ModelEntry("made", "autoregressive", "engines.models.autoregressive.made:MADEModel",
               "MADE: masked autoencoder, several orderings and masks (Germain et al. 2015)",
               capabilities=_autoregressive("mask")),
    ModelEntry("pixelcnn", "autoregressive", "engines.models.autoregressive.pixelcnn:PixelCNN",
               "PixelCNN: masked convolutions, 7x7 mask A then residual 3x3 mask B (van den Oord et al. 2016)",
               capabilities=_autoregressive()),
    ModelEntry("gated-pixelcnn", "autoregressive", "engines.models.autoregressive.pixelcnn:PixelCNN",
               "Gated PixelCNN: vertical and horizontal stacks, no blind spot (van den Oord et al. 2016)",
               capabilities=_autoregressive(), defaults=(("gated", True),)),
    ModelEntry("rbm", "energy", "engines.models.energy.rbm:RBM",
               "Bernoulli-Bernoulli RBM, CD-k or persistent CD (Hinton 2002; Tieleman 2008)",
               capabilities=Capabilities(latent=("binary",), encoder="amortised", likelihood=("ais",),
                                         sampling="gibbs", extras=("chains", "filters"),
                                         hyper=("lr", "k", "momentum", "weight_decay"))),
    ModelEntry("grbm", "energy", "engines.models.energy.grbm:GRBM",
               "Gaussian-Bernoulli RBM for grey-level images, learned variances optional "
               "(Hinton & Salakhutdinov 2006; Cho et al. 2011)",
               capabilities=Capabilities(latent=("binary",), encoder="amortised", likelihood=("ais",),
                                         sampling="gibbs", extras=("chains", "filters"),
                                         hyper=("lr", "k", "momentum", "weight_decay"))),
    ModelEntry("dbn", "energy", "engines.models.energy.dbn:DBN",
               "Deep belief net: RBMs trained greedily layer by layer, sampled by Gibbs in the top RBM then down "
               "(Hinton, Osindero & Teh 2006)",
               capabilities=Capabilities(latent=("binary",), encoder="amortised", sampling="gibbs",
                                         extras=("chains", "filters"), hyper=("lr", "k", "momentum", "weight_decay"))),
    ModelEntry("gumbel-vae", "vae", "engines.models.discrete.gumbel_vae:GumbelVAE",
               "VAE with categorical latents by Gumbel-softmax, straight-through, REINFORCE or NVIL "
               "(Jang et al. 2017; Maddison et al. 2017; Mnih & Gregor 2014)",
               capabilities=Capabilities(latent=("categorical",), encoder="amortised", likelihood=("elbo",),
                                         hyper=("lr", "beta", "temperature"), options=("arch",))),
    ModelEntry("helmholtz", "vae", "engines.models.discrete.helmholtz:Helmholtz",
               "Helmholtz machine: a sigmoid belief net trained by wake-sleep beside an NVIL-trained twin "
               "(Hinton et al. 1995; Mnih & Gregor 2014)",
               capabilities=Capabilities(latent=("binary",), encoder="amortised", likelihood=("elbo",), hyper=("lr",))),
    ModelEntry("vq-vae", "vae", "engines.models.discrete.vq_vae:VQVAE",
               "VQ-VAE: a grid of codes from a learnt codebook, commitment beta, EMA codebook selectable "
               "(van den Oord et al. 2017)",
               capabilities=Capabilities(latent=("categorical",), encoder="amortised", extras=("codebook",),
                                         hyper=("lr", "beta"))),
]}


def capabilities_of_class(cls: type) -> Capabilities:
    """The capabilities an engine class declares: its first registry line's, else its ``declared`` attribute.

    Raises
    ------
    ConfigError
        If the class is neither registered nor declares its capabilities.
    """
    target = f"{cls.__module__}:{cls.__qualname__}"
    for entry in MODELS.values():
        if entry.target == target:
            return entry.capabilities
    declared = getattr(cls, "declared", None)
    if declared is None:
        raise ConfigError(f"{target} has no registry line and declares no capabilities (set its 'declared')")
    return declared


def model_names() -> list[str]:
    """Registered model names in registry order."""
    return list(MODELS)


def engine_class(name: str) -> type:
    """The engine class registered under ``name``.

    Raises
    ------
    ConfigError
        If no model has that name.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    module, cls = MODELS[name].target.split(":")
    return getattr(importlib.import_module(module), cls)


#: Upper bounds of the size settings of every engine's config, checked before a network is built.
SIZE_CAPS = {"latent_dim": 4096, "width": 1024, "hidden": 16384, "d_hidden": 16384, "depth": 256, "d_depth": 64,
             "channels": 1024, "layers": 64, "blocks": 64, "scales": 8, "levels": 8, "steps": 64, "flow_steps": 64,
             "n_masks": 64, "context": 4096, "n_categories": 1000, "n_continuous": 256, "pack": 64, "pack_max": 64}


def make_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of model ``name`` with registry defaults, then ``overrides``, applied.

    Overrides whose value is None are ignored; unknown keys raise :class:`ConfigError`.
    """
    cls = engine_class(name)
    config_cls = cls.config_class
    known = {f.name for f in fields(config_cls)}
    values = dict(MODELS[name].defaults)
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in known:
            raise ConfigError(f"model {name!r} has no setting {k!r}; it has {sorted(known)}")
        values[k] = v
    for k, hi in SIZE_CAPS.items():  # a tampered manifest or a peer must not build a network for minutes
        if k in values and (isinstance(values[k], bool) or not isinstance(values[k], int) or not 0 <= values[k] <= hi):
            raise ConfigError(f"model {name!r}: {k} must be an integer in [0, {hi}], not {values[k]!r}")
    return config_cls(**values)


def create_engine(name: str, data: Any, **overrides: Any) -> Any:
    """Build engine ``name`` for data described by ``data`` (a :class:`DataInfo`).

    Returns
    -------
    Engine
        On the CPU; move it with ``.to(device)``.
    """
    cls = engine_class(name)
    engine = cls(make_config(name, **overrides), data)
    engine.name = name
    engine.capabilities = MODELS[name].capabilities
    return engine
