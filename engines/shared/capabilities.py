"""What a model can do, declared as data: the registry reads it without torch and ``Ready`` carries it.

The window turns its features on from a :class:`Capabilities`, never from a model's family or
name (scikit-learn's estimator tags and napari's plugin manifests are the models). An engine that
is asked for something it has not declared raises :class:`CapabilityError`.

The vocabulary (one tuple per question, the first entry the default where there is one):

========================  ==========================================================================
``encoder``               ``"amortised"`` (a posterior q(z|x): ``encode`` gives its mean, VAEs),
                          ``"exact"`` (an exact inverse: ``encode`` then ``decode`` gives x back,
                          flows), or ``"none"`` (GANs: images reach z by projection instead)
``likelihood``            the log-likelihoods it gives, in nats per example: ``"exact"``, ``"elbo"``
                          (``log_prob`` is the ELBO, a lower bound), ``"iwae"`` (``iwae_bound(x, k)``,
                          Burda et al. 2016), ``"ais"`` (an estimate with its standard error); empty
                          for none
``sampling``              ``"ancestral"`` (one pass from the prior), ``"gibbs"`` (a Markov chain),
                          ``"autoregressive"`` (pixel by pixel)
``conditioning``          ``"none"`` or ``"labels"`` (training batches are ``(x, y)``, y class labels)
``extras``                what else it can show: ``"latent_kl"`` (``latent_kl()``: KL per latent
                          dimension, nats), ``"critic_map"`` (``critic_score(x)``: a critic's score
                          over 2-D data, drawn as a heat map), ``"pack"`` (``pack_size()``: PacGAN's
                          packing, Lin et al. 2018), ``"chains"`` (``chain_start``, ``chain_step``,
                          ``chain_images``, ``clamp_values``, ``hidden_layers``: Gibbs chains to watch
                          and clamp, each layer's hidden units; with an ``"ais"`` likelihood also
                          ``estimate_log_z``: log Z on demand), ``"filters"`` (``filters(layer)``: each
                          hidden unit's weights as an image), ``"codebook"`` (``code_usage()``: a
                          codebook's usage, dead codes flagged)
========================  ==========================================================================

The latent itself is declared by kind (:data:`engines.shared.spec.LATENT_KINDS`): each engine
builds its :class:`~engines.shared.spec.LatentSpec` for its config, and the registry line names
the kinds it may contain, so the window knows which controls a model needs before it is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from engines.shared.errors import ConfigError, LatentStudioError
from engines.shared.spec import LATENT_KINDS

ENCODERS = ("none", "amortised", "exact")
LIKELIHOODS = ("exact", "elbo", "iwae", "ais")
SAMPLING = ("ancestral", "gibbs", "autoregressive")
CONDITIONING = ("none", "labels")
EXTRAS = ("latent_kl", "critic_map", "pack", "chains", "filters", "codebook")
OPTIONS = ("arch",)


class CapabilityError(LatentStudioError, AttributeError):
    """A model was asked for something it does not declare (e.g. ``encode`` on a GAN)."""


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ConfigError(f"capabilities: {what} {value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Capabilities:
    """A model's declared capabilities (see the module docstring for the vocabulary).

    Attributes
    ----------
    latent : tuple of str
        The latent kinds the model's z may hold, from :data:`~engines.shared.spec.LATENT_KINDS`
        (InfoGAN: ``("gaussian", "categorical", "uniform")``); ``("none",)`` for no latent.
    encoder : str
    likelihood : tuple of str
    sampling : str
    conditioning : str
    extras : tuple of str
    hyper : tuple of str
        Names of the live hyperparameters it may have (which ones depends on its config, e.g. a
        WGAN's ``clip``); their values and ranges arrive with ``Ready``.
    options : tuple of str
        Build options the window's Data & Model form may set beside the latent width and seed
        (``"arch"``: the network, conv or MLP).

    Raises
    ------
    ConfigError
        On a value outside the vocabulary.
    """

    latent: tuple[str, ...] = ("gaussian",)
    encoder: str = "none"
    likelihood: tuple[str, ...] = ()
    sampling: str = "ancestral"
    conditioning: str = "none"
    extras: tuple[str, ...] = ()
    hyper: tuple[str, ...] = field(default_factory=tuple)
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in self.latent:
            _check(kind, LATENT_KINDS, "latent kind")
        _check(self.encoder, ENCODERS, "encoder")
        for lik in self.likelihood:
            _check(lik, LIKELIHOODS, "likelihood")
        _check(self.sampling, SAMPLING, "sampling")
        _check(self.conditioning, CONDITIONING, "conditioning")
        for extra in self.extras:
            _check(extra, EXTRAS, "extra")
        for option in self.options:
            _check(option, OPTIONS, "build option")

    # -- questions the window and the worker ask ------------------------------------------------
    @property
    def has_encoder(self) -> bool:
        """Whether images map to z by ``encode`` (amortised or exact), not by projection."""
        return self.encoder != "none"

    @property
    def has_likelihood(self) -> bool:
        """Whether ``log_prob`` gives a log-likelihood or a bound."""
        return bool(self.likelihood)

    @property
    def conditional(self) -> bool:
        """Whether training batches carry class labels."""
        return self.conditioning == "labels"

    def has(self, extra: str) -> bool:
        """Whether ``extra`` (one of :data:`EXTRAS`) is declared.

        Raises
        ------
        ConfigError
            If ``extra`` is not in the vocabulary (a typo would otherwise read as "no").
        """
        _check(extra, EXTRAS, "extra")
        return extra in self.extras

    def require(self, what: str, model: str = "this model") -> None:
        """Raise :class:`CapabilityError` unless ``what`` is declared.

        ``what`` is ``"encoder"``, ``"likelihood"``, ``"conditioning"``, a likelihood name
        (``"iwae"``) or an extra (``"critic_map"``).
        """
        ok = {
            "encoder": self.has_encoder, "likelihood": self.has_likelihood, "conditioning": self.conditional,
        }.get(what)
        if ok is None:
            if what in LIKELIHOODS:
                ok = what in self.likelihood
            else:
                ok = self.has(what)
        if not ok:
            raise CapabilityError(f"{model} does not declare {what!r} (it declares {self.summary()})")

    def summary(self) -> str:
        """One line for messages and tooltips, e.g. ``"encoder amortised, likelihood elbo+iwae, ..."``."""
        parts = [f"latent {'+'.join(self.latent)}", f"encoder {self.encoder}",
                 f"likelihood {'+'.join(self.likelihood) or 'none'}", f"sampling {self.sampling}"]
        if self.conditional:
            parts.append("conditioned on labels")
        if self.extras:
            parts.append("extras " + "+".join(self.extras))
        return ", ".join(parts)

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-able dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict) -> Capabilities:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        ConfigError
            On an unknown key or a value outside the vocabulary.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"capabilities: unknown keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
