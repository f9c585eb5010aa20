"""Directions, maps and nearest neighbours on the job thread: the worker side of the Directions and Map tabs.

- :func:`gather` collects the latents a model's directions are found in: posterior means (or a flow's
  exact z) of held-out images for a model with an encoder; prior draws and the generator's first-layer
  activations (:meth:`Engine.latent_features`) for one without (GANSpace, Harkonen et al. 2020).
- :func:`run_directions` answers :class:`~engines.shared.protocol.FindDirections`,
  :func:`run_map` :class:`~engines.shared.protocol.MapLatents`, and :func:`run_nearest`
  :class:`~engines.shared.protocol.FindNearest`; each on a private copy of the snapshot's weights,
  with Progress, and None when cancelled.

Only continuous dimensions move: directions are found in them and put back into z with zeros on
categorical and binary dimensions (a cGAN's class stays picked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engines.lib import directions as D
from engines.shared import latent_map
from engines.shared import protocol as P
from engines.shared.directions import DirectionSet
from engines.shared.errors import ConfigError, DataError
from engines.worker.host import Hosted, to_numpy
from engines.worker.jobs import Job, PrivateCopies

#: Images encoded (or latents decoded) per batch.
BATCH = 200
#: Training examples the nearest-neighbour search looks through at most.
MAX_NEAREST_POOL = 60000
#: The training set's encodings for the weights searched last (a click away means no re-encoding).
_TRAIN_CODES: dict[tuple, np.ndarray] = {}
#: Methods of FindDirections.
METHODS = ("pca", "ica", "class", "attribute", "groups", "local")


@dataclass
class Latents:
    """Latents gathered for directions or a map.

    z : (N, D) float64 full latents; features : (N, F) or None; indices : (N,) held-out positions or None
    (prior draws); source : what they are, in words.
    """

    z: np.ndarray
    features: np.ndarray | None
    indices: np.ndarray | None
    source: str


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ConfigError(f"{what} must be an integer in [{lo}, {hi}], not {value!r}")
    return int(value)


def encode_positions(job: Job | None, model, dataset, positions: np.ndarray, split: str = "test",
                     what: str = "encoding held-out images") -> np.ndarray | None:
    """(N, D) float64 encodings of examples at ``positions`` of ``split``; None when cancelled."""
    pool = np.asarray(dataset.test_indices if split == "test" else dataset.train_indices)
    idx = pool[np.asarray(positions, np.int64)]
    out = []
    for start in range(0, len(idx), BATCH):
        if job is not None:
            if job.cancel.is_set():
                return None
            job.progress(start, len(idx), what)
        x = torch.from_numpy(np.ascontiguousarray(dataset.get(idx[start: start + BATCH]), dtype=np.float32))
        with torch.inference_mode():
            out.append(to_numpy(model.encode(x.to(model.device))).astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, model.latent.dim))


def gather(job: Job, model, dataset, n: int, seed: int = 0, positions: np.ndarray | None = None,
           centre: np.ndarray | None = None, radius: float = 0.5) -> Latents | None:
    """The latents directions and maps are found in (see the module docstring); None when cancelled.

    Parameters
    ----------
    n : int
        Held-out images encoded (a random subset of the split drawn with ``seed``), or prior draws.
    positions : (M,) int array or None
        Held-out positions to encode instead of the first n.
    centre : (D,) array or None
        For a model without an encoder: draw ``centre + radius * N(0, I)`` on the continuous
        dimensions instead of the prior (a local neighbourhood).

    Raises
    ------
    ConfigError
        A model without a latent. DataError: no data set loaded for a model with an encoder.
    """
    if model.latent.dim == 0:
        raise ConfigError(f"{model.name}: no latent to find directions in (it draws pixel by pixel)")
    if model.capabilities.has_encoder:
        if dataset is None:
            raise DataError("no data set is loaded (the checkpoint's data could not be found): nothing to encode")
        if positions is None:  # a seeded random subset: a split can be ordered by factor (shapes is a grid)
            m = len(dataset.test_indices)
            pos = np.sort(np.random.default_rng(seed).choice(m, min(n, m), replace=False))
        else:
            pos = np.asarray(positions, np.int64)
        z = encode_positions(job, model, dataset, pos)
        if z is None:
            return None
        kind = "exact z" if model.capabilities.encoder == "exact" else "posterior means"
        return Latents(z, None, pos, f"{kind} of {len(pos)} held-out images")
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    z = model.prior_sample(n, gen).float()
    if centre is not None:
        cont = model.latent.continuous
        c = torch.as_tensor(np.asarray(centre, np.float32), device=model.device)
        noise = torch.randn(n, len(cont), generator=gen, device=model.device)
        z = c.expand(n, -1).clone()
        z[:, cont] = c[cont] + radius * noise
    feats = []
    for start in range(0, n, BATCH):
        if job.cancel.is_set():
            return None
        job.progress(start, n, "pushing prior draws through the generator's first layer")
        f = model.latent_features(z[start: start + BATCH])
        if f is None:
            feats = None
            break
        feats.append(to_numpy(f).astype(np.float64))
    features = None if feats is None else np.concatenate(feats)
    where = "around the point" if centre is not None else "from the prior"
    src = f"{n} draws {where}" + (", PCA in the generator's first layer" if features is not None else "")
    return Latents(to_numpy(z).astype(np.float64), features, None, src)


def _continuous(model) -> list[int]:
    if model.latent.shape is not None:
        return list(range(model.latent.dim))
    cont = model.latent.continuous
    if not cont:
        raise ConfigError(f"{model.name}: no continuous latent dimension to move along a direction")
    return cont


def _embed(found: DirectionSet, cont: list[int], dim: int) -> DirectionSet:
    """Directions over the continuous dimensions put back into z (zeros elsewhere)."""
    if found.dim == dim:
        return found
    v = np.zeros((len(found), dim), np.float32)
    v[:, cont] = found.vectors
    return DirectionSet(v, found.scales, found.names, found.explained, found.method, found.source)


def _labels_for(dataset, positions: np.ndarray, what: str) -> np.ndarray:
    labels = dataset.labels(np.asarray(dataset.test_indices)[positions])
    if labels is None:
        raise DataError(f"{dataset.info.spec}: {what} need labels, and this data set has none")
    return np.asarray(labels)


def find(job: Job, cmd: P.FindDirections, model, dataset) -> tuple[DirectionSet, int] | None:
    """The directions a FindDirections asks for (see its docstring) and the latents used; None when cancelled.

    Raises
    ------
    ConfigError, DataError
        A request out of range, labels or factors missing, a group without members.
    """
    if cmd.method not in METHODS:
        raise ConfigError(f"FindDirections: method must be one of {', '.join(METHODS)}, not {cmd.method!r}")
    k = _int(cmd.k, "FindDirections: k", 1, P.MAX_DIRECTIONS)
    n = _int(cmd.n_examples, "FindDirections: n_examples", 3, P.MAX_DIRECTION_POOL)
    seed = _int(cmd.seed, "FindDirections: seed", 0, 2**63 - 1)
    cont, dim = _continuous(model), model.latent.dim
    by_class = cmd.method == "class" or (cmd.method == "attribute" and cmd.factor in ("class", ""))
    classify = False  # a model without an encoder: class directions from its draws, as the classifier sees them
    if cmd.method in ("class", "attribute", "groups") and not model.capabilities.has_encoder:
        labelled = dataset is not None and bool(dataset.info.class_names) and dataset.info.kind == "image"
        if not (by_class and labelled):
            raise ConfigError(f"{model.name}: {cmd.method} directions of factors or groups come from encoded images, "
                              f"and this model has no encoder; use principal or independent components (GANSpace)"
                              + (", or class directions" if labelled else ""))
        classify = True
    if cmd.method == "groups":
        return _groups(job, cmd, model, dataset, cont)
    positions = None
    point = None
    if cmd.method == "local":
        point = np.asarray(cmd.point if cmd.point is not None else [], np.float64).reshape(-1)
        if len(point) != dim or not np.isfinite(point).all():
            raise ConfigError(f"FindDirections: local directions need the current point, {dim} finite values")
    lat = gather(job, model, dataset, n, seed, positions,
                 centre=point if (point is not None and not model.capabilities.has_encoder) else None)
    if lat is None:
        return None
    labels = None
    if classify:
        images = _decode_all(job, model, lat.z.astype(np.float32))
        labels = None if images is None else _classified(job, dataset, images, model.device)
        if labels is None:
            return None
        lat.source += ", classed by the studio's classifier"
    job.progress(1, 1, "directions")
    z = lat.z[:, cont]
    if cmd.method == "pca":
        found = D.principal_directions(z, k, lat.features, lat.source)
    elif cmd.method == "ica":
        found = D.independent_directions(z, k, lat.features, seed, lat.source)
    elif cmd.method == "local":
        found = D.local_directions(z, point[cont], k, features=lat.features)
    else:
        found = _attribute(cmd, z, dataset, lat, labels)
    found.source = found.source or lat.source
    return _embed(found, cont, dim), len(lat.z)


def _groups(job: Job, cmd: P.FindDirections, model, dataset, cont: list[int]) -> tuple[DirectionSet, int] | None:
    """The direction from group A to group B: held-out positions and dropped images, encoded."""
    codes = []
    for what, positions, images in (("group A", cmd.group_a, cmd.images_a), ("group B", cmd.group_b, cmd.images_b)):
        parts = []
        if positions:
            z = encode_positions(job, model, dataset, _positions(positions, dataset, what), what=f"encoding {what}")
            if z is None:
                return None
            parts.append(z)
        if images is not None and len(images):
            x = np.asarray(images, np.float32)
            shape = tuple(model.data.shape)
            if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or len(x) > P.MAX_REQUEST or not np.isfinite(x).all():
                raise ConfigError(f"FindDirections: {what}'s images must be N x {'x'.join(map(str, shape))} finite values")
            with torch.inference_mode():
                parts.append(to_numpy(model.encode(torch.from_numpy(x).to(model.device))).astype(np.float64))
        if not parts:
            raise ConfigError(f"FindDirections: {what} is empty: lasso points on the Map, or add images to it")
        codes.append(np.concatenate(parts))
    za, zb = codes
    z = np.concatenate([za, zb])
    source = f"posterior means of {len(za)} + {len(zb)} images in two groups"
    found = D.attribute_direction(z[:, cont], np.arange(len(z)) >= len(za), cmd.estimator,
                                  f"group A -> group B ({len(za)} / {len(zb)} images)", source)
    return _embed(found, cont, model.latent.dim), len(z)


def _positions(group: list | None, dataset, what: str) -> np.ndarray:
    if dataset is None:
        raise DataError("no data set is loaded: groups of held-out images are unavailable")
    if not isinstance(group, (list, tuple)) or not group:
        raise ConfigError(f"FindDirections: {what} must be a non-empty list of held-out positions")
    if len(group) > P.MAX_DIRECTION_POOL:
        raise ConfigError(f"FindDirections: {what} holds more than {P.MAX_DIRECTION_POOL} images")
    pos = np.asarray([_int(g, f"FindDirections: {what}'s positions", 0, len(dataset.test_indices) - 1)
                      for g in group], np.int64)
    return pos


def _attribute(cmd: P.FindDirections, z: np.ndarray, dataset, lat: Latents,
               labels: np.ndarray | None = None) -> DirectionSet:
    names = dataset.info.class_names or ()
    if cmd.method == "class" or cmd.factor in ("class", ""):
        if labels is None:
            labels = _labels_for(dataset, lat.indices, "class directions")
        to = _int(cmd.to_class, "FindDirections: to_class", 0, max(0, len(names) - 1))
        if cmd.method == "class":
            fr = _int(cmd.from_class, "FindDirections: from_class", 0, max(0, len(names) - 1))
            if fr == to:
                raise ConfigError("FindDirections: pick two different classes")
            what = "held-out image" if lat.indices is not None else "draw"
            for c in (fr, to):
                if not (labels == c).any():
                    raise DataError(f"FindDirections: no {what} of class {names[c]} among the {len(labels)} used")
            keep = np.isin(labels, [fr, to])
            return D.attribute_direction(z[keep], labels[keep] == to, cmd.estimator,
                                         f"{names[fr]} -> {names[to]}", lat.source)
        return D.attribute_direction(z, labels == to, cmd.estimator, f"class {names[to]}", lat.source)
    factors = dataset.info.factor_names or ()
    if cmd.factor not in factors:
        raise DataError(f"{dataset.info.spec}: no factor named {cmd.factor!r}"
                        + (f" (it has {', '.join(factors)})" if factors else " (it has no ground-truth factors)"))
    values = dataset.factor_values(np.asarray(dataset.test_indices)[lat.indices])
    col = np.asarray(values, np.float64)[:, list(factors).index(cmd.factor)]
    return D.attribute_direction(z, col, cmd.estimator, cmd.factor, lat.source)


def run_directions(job: Job, cmd: P.FindDirections, hosted: Hosted, copies: PrivateCopies) -> P.DirectionsFound | None:
    """Answer a FindDirections on the job thread (see :func:`find`); None when cancelled."""
    model = copies.get(hosted.snapshot)
    result = find(job, cmd, model, hosted.dataset)
    if result is None:
        return None
    found, used = result
    names = [n if not np.isfinite(e) else f"{n} ({100 * e:.1f}% of variance)"
             for n, e in zip(found.names, found.explained)]
    return P.DirectionsFound(request_id=cmd.request_id, step=hosted.snapshot.step, directions=found.vectors,
                             scales=found.scales, explained=found.explained, names=names, n=used, method=cmd.method, source=found.source)


def _thumbnails(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float32) * 255), 0, 255).astype(np.uint8)


def _decode_all(job: Job, model, z: np.ndarray) -> np.ndarray | None:  # noqa: ANN001
    """(N, ...) float32 the model's decodes of z (N, D), batch by batch; None when cancelled."""
    parts = []
    for start in range(0, len(z), BATCH):
        if job.cancel.is_set():
            return None
        job.progress(start, len(z), "decoding the draws")
        with torch.inference_mode():
            parts.append(to_numpy(model.decode(torch.from_numpy(z[start: start + BATCH]).to(model.device))))
    return np.concatenate(parts)


def _classified(job: Job, dataset, images: np.ndarray, device) -> np.ndarray | None:  # noqa: ANN001
    """(N,) int64 each image's top class by the studio's classifier of ``dataset`` (cached; trained on first use)."""
    from engines.metrics.classifier import load_or_train_classifier, predict_proba

    def progress(done: int, total: int) -> None:
        job.progress(done, total, "training the classifier (once per data set)")

    if job.cancel.is_set():
        return None
    classifier, _ = load_or_train_classifier(dataset, device=device, progress=progress)
    return np.argmax(predict_proba(classifier, images), axis=1).astype(np.int64)


def run_map(job: Job, cmd: P.MapLatents, hosted: Hosted, copies: PrivateCopies) -> P.LatentMapped | None:
    """Answer a MapLatents on the job thread: gather, then PCA or t-SNE with progress; None when cancelled.

    Raises
    ------
    ConfigError
        A method, size or perplexity out of range; a model without a latent.
    """
    if cmd.method not in ("pca", "tsne"):
        raise ConfigError(f"MapLatents: method must be 'pca' or 'tsne', not {cmd.method!r}")
    n = _int(cmd.n, "MapLatents: n", 3, P.MAX_MAP_POINTS)
    seed = _int(cmd.seed, "MapLatents: seed", 0, 2**63 - 1)
    if isinstance(cmd.perplexity, bool) or not isinstance(cmd.perplexity, (int, float)) or not 5 <= cmd.perplexity <= 100:
        raise ConfigError(f"MapLatents: perplexity must lie in [5, 100], not {cmd.perplexity!r}")
    model = copies.get(hosted.snapshot)
    dataset = hosted.dataset
    lat = gather(job, model, dataset, n, seed)
    if lat is None:
        return None
    z = lat.z.astype(np.float32)
    if lat.indices is not None:
        idx = np.asarray(dataset.test_indices)[lat.indices]
        images = dataset.get(idx)
        labels = dataset.labels(idx)
        factors = dataset.factor_values(idx)
    else:
        images = _decode_all(job, model, z)
        if images is None:
            return None
        labels, factors = None, None
        cat = model.latent.categorical
        if "class" in cat:  # a conditional GAN: colour by the class drawn
            labels = np.argmax(z[:, cat["class"]], axis=1)
        elif images.ndim == 4 and dataset is not None and dataset.info.class_names:
            labels = _classified(job, dataset, images, model.device)  # colour draws by what they look like
            if labels is None:
                return None
            lat.source += ", coloured by the studio's classifier"

    def progress(fraction: float, what: str) -> None:
        job.progress(int(1000 * fraction), 1000, what)

    cont = _continuous(model)
    init = None if cmd.init is None else np.asarray(cmd.init, np.float32)
    if init is not None and init.shape != (len(z), 2):
        init = None  # a map of other points (the split changed size): start afresh
    xy = D.map_2d(lat.z[:, cont], cmd.method, float(cmd.perplexity), seed, job.cancel, progress, init=init)
    if xy is None:
        return None
    job.progress(1000, 1000, "map")
    points = images.ndim == 2
    info = dataset.info if dataset is not None else None
    return P.LatentMapped(
        request_id=cmd.request_id, step=hosted.snapshot.step, method=cmd.method, xy=xy, z=z,
        images=None if points else _thumbnails(images),
        indices=(lat.indices if lat.indices is not None else np.full(len(z), -1)).astype(np.int64),
        labels=np.full(len(z), -1, np.int64) if labels is None else np.asarray(labels, np.int64),
        factors=None if factors is None else np.asarray(factors, np.float32),
        factor_names=list(info.factor_names or ()) if (info is not None and factors is not None) else [],
        class_names=list(info.class_names or ()) if info is not None else [],
        source=lat.source + (", t-SNE" if cmd.method == "tsne" else ", top two principal components"))


def run_nearest(job: Job, cmd: P.FindNearest, hosted: Hosted, copies: PrivateCopies) -> P.NearestFound | None:
    """Answer a FindNearest: decode z, then the nearest training examples in pixel and latent space.

    Raises
    ------
    ConfigError
        A z of the wrong width, k out of range. DataError: no data set loaded.
    """
    model = copies.get(hosted.snapshot)
    dataset = hosted.dataset
    if dataset is None:
        raise DataError("no data set is loaded (the checkpoint's data could not be found): no training examples")
    k = _int(cmd.k, "FindNearest: k", 1, 32)
    z = np.asarray(cmd.z if cmd.z is not None else [], np.float32).reshape(-1)
    if len(z) != model.latent.dim or not np.isfinite(z).all() or model.latent.dim == 0:
        raise ConfigError(f"FindNearest: z must be {model.latent.dim} finite values, not {len(z)}")
    with torch.inference_mode():
        image = to_numpy(model.decode(torch.from_numpy(z[None]).to(model.device)))
    pool = np.asarray(dataset.train_indices)[:MAX_NEAREST_POOL]
    flat = image.reshape(-1).astype(np.float64)
    best_d = np.full(0, np.inf)
    best_i = np.zeros(0, np.int64)
    for start in range(0, len(pool), 2000):  # pixel space, block by block (never the whole set at once)
        if job.cancel.is_set():
            return None
        job.progress(start, len(pool), "pixel space")
        block = dataset.get(pool[start: start + 2000])
        i, d = latent_map.nearest(flat, block.reshape(len(block), -1), k)
        best_i, best_d = np.concatenate([best_i, i + start]), np.concatenate([best_d, d])
        keep = np.argsort(best_d, kind="stable")[:k]
        best_i, best_d = best_i[keep], best_d[keep]
    out = dict(pixel_images=dataset.get(pool[best_i]).astype(np.float32), pixel_indices=best_i,
               pixel_distances=best_d.astype(np.float32))
    if model.capabilities.has_encoder:
        key = (id(dataset), hosted.snapshot.step, id(hosted.snapshot), len(pool))
        enc = _TRAIN_CODES.get(key)
        if enc is None:
            enc = encode_positions(job, model, dataset, np.arange(len(pool)), "train", "latent space")
            if enc is None:
                return None
            _TRAIN_CODES.clear()
            _TRAIN_CODES[key] = enc
        i, d = latent_map.nearest(z.astype(np.float64), enc, k)
        out.update(latent_images=dataset.get(pool[i]).astype(np.float32), latent_indices=i,
                   latent_distances=d.astype(np.float32))
    job.progress(1, 1, "nearest")
    return P.NearestFound(request_id=cmd.request_id, step=hosted.snapshot.step, image=image, n=len(pool), **out)
