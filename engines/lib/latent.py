"""Latent-space maths for the Interpolate, Morph and Export panels: pure torch, no Qt.

- :func:`lerp` and :func:`slerp` between two latent vectors (Shoemake 1985; White 2016,
  "Sampling generative networks", which recommends slerp for Gaussian priors);
- :func:`path`: multi-keyframe paths (piecewise lerp, piecewise slerp, or a centripetal
  Catmull-Rom spline, Catmull & Rom 1974, Yuksel et al. 2011) that hit every keyframe exactly,
  optionally re-parameterised to constant speed by arc length;
- :func:`interpolate_spec`: the same over a :class:`~engines.shared.spec.LatentSpec`, cross-fading
  categorical one-hot blocks so they stay valid mixtures;
- :func:`morph`, :func:`mask_for` and :func:`arithmetic` (Radford et al. 2016, DCGAN vector
  arithmetic; content vs style as in Mirza & Osindero 2014's conditional GAN);
- real images in (:func:`engines.lib.projection.project`, :func:`engines.lib.projection.to_latent`) live in
  :mod:`engines.lib.projection`.

Shapes: z is (N, D) with D = ``spec.dim``; a single latent vector is (D,).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from engines.shared.errors import ConfigError
from engines.shared.spec import LatentSpec

METHODS = ("lerp", "slerp", "spline")
#: Samples per segment used to measure arc length for ``constant_speed``.
ARC_SAMPLES = 256


# -- two-point interpolation -------------------------------------------------------------------
def _as_t(t: torch.Tensor | Sequence[float] | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() > 1:
        raise ConfigError(f"t must be a scalar or 1-D (T,), not of shape {tuple(t.shape)}")
    return t.reshape(-1)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.dim() not in (1, 2):
        raise ConfigError(f"endpoints must both be (D,) or (B, D); got {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return a.to(dtype), b.to(dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
    """Linear interpolation ``(1 - t) a + t b``, exact at t = 0 and t = 1.

    Parameters
    ----------
    a, b : Tensor, (D,) or (B, D)
        Endpoints.
    t : Tensor or float, (T,)
        Interpolation times; [0, 1] interpolates, outside extrapolates.

    Returns
    -------
    Tensor
        (T, D) for (D,) endpoints, (B, T, D) for (B, D) endpoints.

    Raises
    ------
    ConfigError
        Endpoints of different shapes, or t not 1-D.
    """
    a, b = _check_pair(a, b)
    t = _as_t(t, a)[:, None]
    return torch.lerp(a[..., None, :], b[..., None, :], t)


def _slerp_rows(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Row-wise slerp: a, b (N, D), t (N,) -> (N, D); lerp where a, b are (anti-)parallel or zero."""
    t = t[:, None]
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(1e-30), b / nb.clamp_min(1e-30)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    degenerate = (so.abs() < eps) | (na < 1e-30) | (nb < 1e-30)
    so_safe = torch.where(degenerate, torch.ones_like(so), so)
    wa, wb = torch.sin((1.0 - t) * omega) / so_safe, torch.sin(t * omega) / so_safe
    if norm == "white":
        out = wa * a + wb * b
    else:  # great circle on the unit directions, norm interpolated linearly
        out = (wa * ua + wb * ub) * torch.lerp(na, nb, t)
    out = torch.where(degenerate, torch.lerp(a, b, t), out)
    out = torch.where(t == 0, a, out)
    return torch.where(t == 1, b, out)


def slerp(
    a: torch.Tensor,
    b: torch.Tensor,
    t: torch.Tensor | Sequence[float] | float,
    norm: str = "white",
    eps: float = 1e-6,
) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985) as recommended for Gaussian priors by
    White (2016), "Sampling generative networks".

    With omega the angle between a and b::

        norm="white":  slerp(a, b; t) = sin((1 - t) omega) / sin(omega) a + sin(t omega) / sin(omega) b

    White's formula applied to the unnormalised vectors (his ``slerp``). For unit vectors it
    follows the great circle at constant angular speed and keeps the norm at 1; for vectors of
    different norms the norm changes smoothly but not linearly. ``norm="lerp"`` instead applies
    the formula to the unit directions and interpolates the norm linearly,
    ``((1 - t) |a| + t |b|)``. Both fall back to :func:`lerp` where a and b are parallel or
    antiparallel (|sin omega| < eps) or one of them is zero, where the great circle is undefined.
    The endpoints are exact.

    Parameters
    ----------
    a, b, t
        As in :func:`lerp`: endpoints (D,) or (B, D), times (T,) in [0, 1].
    norm : {"white", "lerp"}
        The variant, above.
    eps : float
        Threshold on |sin omega| below which lerp is used.

    Returns
    -------
    Tensor
        (T, D) for (D,) endpoints, (B, T, D) for (B, D) endpoints.

    Raises
    ------
    ConfigError
        As :func:`lerp`, or an unknown ``norm``.
    """
    if norm not in ("white", "lerp"):
        raise ConfigError(f"slerp: norm must be 'white' or 'lerp', not {norm!r}")
    a, b = _check_pair(a, b)
    t = _as_t(t, a)
    lead = a.shape[:-1]
    d = a.shape[-1]
    a2 = a.reshape(-1, 1, d).expand(-1, t.numel(), d).reshape(-1, d)
    b2 = b.reshape(-1, 1, d).expand(-1, t.numel(), d).reshape(-1, d)
    t2 = t.repeat(max(1, math.prod(lead)))
    return _slerp_rows(a2, b2, t2, norm, eps).reshape(*lead, t.numel(), d)


# -- multi-keyframe paths ----------------------------------------------------------------------
def _catmull_rom(p: torch.Tensor, seg: torch.Tensor, u: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Centripetal Catmull-Rom (Barry & Goldman 1988 pyramid; Yuksel et al. 2011) through p (K, D).

    Segment ``seg`` (F,) runs from p[seg] to p[seg + 1] at local parameter u (F,) in [0, 1]. The
    end tangents come from reflected phantom points 2 p0 - p1 and 2 p[K-1] - p[K-2].
    """
    ext = torch.cat([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])  # (K + 2, D)
    p0, p1, p2, p3 = ext[seg], ext[seg + 1], ext[seg + 2], ext[seg + 3]

    def knot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dt = (y - x).norm(dim=-1, keepdim=True) ** alpha
        return torch.where(dt < 1e-9, torch.ones_like(dt), dt)  # coincident points: unit step

    t0 = torch.zeros_like(p0[:, :1])
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    t = t1 + u[:, None] * (t2 - t1)
    a1 = ((t1 - t) * p0 + (t - t0) * p1) / (t1 - t0)
    a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
    a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
    b1 = ((t2 - t) * a1 + (t - t0) * a2) / (t2 - t0)
    b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
    return ((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1)


def _segments(p: torch.Tensor, method: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Evaluator (seg (F,) long, u (F,)) -> (F, D) of the path through keyframes p (K, D)."""
    if method == "slerp":
        return lambda seg, u: _slerp_rows(p[seg], p[seg + 1], u, "white", 1e-6)
    if method == "spline" and len(p) > 2:  # through two points the spline is the straight segment
        return lambda seg, u: _catmull_rom(p, seg, u)
    return lambda seg, u: torch.lerp(p[seg], p[seg + 1], u[:, None])


def _allocate(weights: list[float], steps: int) -> list[int]:
    """Split ``steps`` frame steps over segments in proportion to ``weights``, at least 1 each."""
    k = len(weights)
    total = sum(weights)
    if not total > 0 or not math.isfinite(total):
        weights, total = [1.0] * k, float(k)
    ideal = [steps * w / total for w in weights]
    n = [max(1, int(math.floor(x))) for x in ideal]
    while sum(n) < steps:  # largest remainder first
        i = max(range(k), key=lambda j: ideal[j] - n[j])
        n[i] += 1
    while sum(n) > steps:  # took too many through the minimum of 1: give back the most over
        i = max((j for j in range(k) if n[j] > 1), key=lambda j: n[j] - ideal[j])
        n[i] -= 1
    return n


def _schedule(
    evaluate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    segments: int,
    frames: int,
    constant_speed: bool,
    like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per frame: segment index (F,), fraction of the segment's frames f (F,) and parameter u (F,).

    Without ``constant_speed`` every segment gets an equal share of the frames and u = f. With it,
    frames are shared in proportion to each segment's arc length (measured with ARC_SAMPLES chords)
    and u is the parameter where the cumulative arc length reaches the fraction f of the segment.
    """
    dev, dt = like.device, like.dtype
    dense = torch.linspace(0.0, 1.0, ARC_SAMPLES + 1, dtype=dt, device=dev)
    cum = None
    if constant_speed:
        seg = torch.arange(segments, device=dev).repeat_interleave(ARC_SAMPLES + 1)
        pts = evaluate(seg, dense.repeat(segments)).reshape(segments, ARC_SAMPLES + 1, -1)
        chords = (pts[:, 1:] - pts[:, :-1]).norm(dim=-1)
        cum = torch.cat([torch.zeros_like(chords[:, :1]), chords.cumsum(1)], 1)  # (S, M + 1)
    n = _allocate(cum[:, -1].tolist() if cum is not None else [1.0] * segments, frames - 1)
    seg_t = torch.tensor([i for i, ni in enumerate(n) for _ in range(ni)] + [segments - 1], device=dev)
    f = torch.tensor([m / ni for ni in n for m in range(ni)] + [1.0], dtype=dt, device=dev)
    if cum is None:
        return seg_t, f, f.clone()
    c = cum[seg_t].contiguous()  # (F, M + 1): invert each frame's segment's cumulative length
    target = f * c[:, -1]
    j = torch.searchsorted(c, target[:, None], right=True)[:, 0].clamp(1, ARC_SAMPLES)
    lo, hi = c.gather(1, j[:, None] - 1)[:, 0], c.gather(1, j[:, None])[:, 0]
    w = ((target - lo) / (hi - lo).clamp_min(1e-300)).clamp(0, 1)  # zero-length segments: w = 0
    u = torch.lerp(dense[j - 1], dense[j], w)
    return seg_t, f, u


def _check_path_args(keyframes: torch.Tensor, frames: int, method: str) -> torch.Tensor:
    keyframes = torch.as_tensor(keyframes)
    if keyframes.dim() != 2 or keyframes.shape[0] < 1:
        raise ConfigError(f"keyframes must be (K, D) with K >= 1, not of shape {tuple(keyframes.shape)}")
    if method not in METHODS:
        raise ConfigError(f"unknown interpolation method {method!r}; use one of {', '.join(METHODS)}")
    k = keyframes.shape[0]
    least = max(k, 2 if k > 1 else 1)
    if int(frames) != frames or frames < least:
        raise ConfigError(f"a path through {k} keyframes needs at least {least} frames, not {frames}")
    if not torch.isfinite(keyframes).all():
        raise ConfigError("keyframes contain NaN or infinite values")
    return keyframes


def _path(
    keyframes: torch.Tensor, frames: int, method: str, constant_speed: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(path (F, D) float64, segment (F,), fraction f (F,)); keyframes (K, D) with K >= 2."""
    p = keyframes.to(torch.float64)
    evaluate = _segments(p, method)
    seg, f, u = _schedule(evaluate, p.shape[0] - 1, frames, constant_speed, p)
    out = evaluate(seg, u)
    hit = f == 0  # keyframe frames: exact
    out[hit] = p[seg[hit]]
    out[-1] = p[-1]
    return out, seg, f


def path(
    keyframes: torch.Tensor, frames: int, method: str = "lerp", constant_speed: bool = False
) -> torch.Tensor:
    """A path of ``frames`` latent vectors through every keyframe, in order.

    Each keyframe is one of the frames, exactly. Between consecutive keyframes the path is a lerp,
    a slerp (White 2016, ``norm="white"``, see :func:`slerp`), or a centripetal Catmull-Rom
    spline through all keyframes (alpha = 1/2: Catmull & Rom 1974; Yuksel, Schaefer & Keyser
    2011, which shows that the centripetal form has no cusps or self-intersections within a
    segment), with phantom end points reflected through the first and last keyframes.

    Parameters
    ----------
    keyframes : Tensor, (K, D)
        Keyframes, K >= 1.
    frames : int
        Number of frames F >= K (and >= 2 when K > 1).
    method : {"lerp", "slerp", "spline"}
        Curve between keyframes.
    constant_speed : bool
        Re-parameterise by arc length: each segment gets frames in proportion to its length, and
        within a segment the frames are equally spaced along the curve (cumulative chord length
        of a dense sampling, inverted by linear interpolation). Otherwise every segment gets an
        equal share of the frames, equally spaced in the curve's own parameter.

    Returns
    -------
    Tensor
        (F, D), of the keyframes' floating dtype.

    Raises
    ------
    ConfigError
        Bad shapes, an unknown method, too few frames, or non-finite keyframes.
    """
    keyframes = _check_path_args(keyframes, frames, method)
    dtype = keyframes.dtype if keyframes.dtype.is_floating_point else torch.get_default_dtype()
    if keyframes.shape[0] == 1:
        return keyframes.to(dtype).expand(int(frames), -1).clone()
    return _path(keyframes, int(frames), method, constant_speed)[0].to(dtype)


# -- latent specs: categorical blocks and binary units ---------------------------------------
def to_simplex(p: torch.Tensor) -> torch.Tensor:
    """Rows of p (..., k) clamped at 0 and renormalised to sum 1 (uniform where all are 0)."""
    p = p.clamp_min(0)
    s = p.sum(-1, keepdim=True)
    return torch.where(s > 0, p / s.clamp_min(1e-30), torch.full_like(p, 1.0 / p.shape[-1]))


def interpolate_spec(
    spec: LatentSpec,
    keyframes: torch.Tensor,
    frames: int,
    method: str = "lerp",
    constant_speed: bool = False,
) -> torch.Tensor:
    """:func:`path` over the continuous dimensions of ``spec``, cross-fading categorical blocks and binary units.

    Gaussian and uniform dimensions (``spec.continuous``) follow :func:`path` (``method``,
    ``constant_speed`` measured on them, or on the rest where there are none). Each categorical
    one-hot block (``spec.categorical``) is mixed linearly in frame time between consecutive
    keyframes on the same frame schedule. Each keyframe's block is first clamped at 0 and
    renormalised to sum 1, so every frame's block is a valid mixture (non-negative, sum 1); decoders
    of conditional models take such soft codes. A binary unit is mixed linearly in frame time too
    (a probability between its keyframes' values; no slerp or spline overshoot).

    Parameters
    ----------
    spec : LatentSpec
        The latent space, D = spec.dim.
    keyframes, frames, method, constant_speed
        As in :func:`path`; keyframes (K, D).

    Returns
    -------
    Tensor
        (F, D).

    Raises
    ------
    ConfigError
        Keyframes whose width is not spec.dim, or any error of :func:`path`.
    """
    keyframes = _check_path_args(keyframes, frames, method)
    if keyframes.shape[1] != spec.dim:
        raise ConfigError(f"keyframes have {keyframes.shape[1]} dimensions; the latent space has {spec.dim}")
    dtype = keyframes.dtype if keyframes.dtype.is_floating_point else torch.get_default_dtype()
    p = keyframes.to(torch.float64).clone()
    blocks = spec.categorical.values()
    for idx in blocks:
        p[:, idx] = to_simplex(p[:, idx])
    if p.shape[0] == 1:
        return p.to(dtype).expand(int(frames), -1).clone()
    cont = spec.continuous if spec.shape is None else list(range(spec.dim))
    out = torch.empty(int(frames), spec.dim, dtype=torch.float64)
    if cont:
        out[:, cont], seg, f = _path(p[:, cont], int(frames), method, constant_speed)
    else:
        _, seg, f = _path(p, int(frames), "lerp", constant_speed)
    for idx in blocks:
        block = p[:, idx]
        out[:, idx] = to_simplex(torch.lerp(block[seg], block[seg + 1], f[:, None]))
    binary = spec.indices("binary")
    if binary:
        units = p[:, binary]
        out[:, binary] = torch.lerp(units[seg], units[seg + 1], f[:, None])
    return out.to(dtype)


# -- morph and arithmetic ----------------------------------------------------------------------
def morph(z_a: torch.Tensor, z_b: torch.Tensor, strengths: torch.Tensor | float) -> torch.Tensor:
    """Take chosen dimensions from z_b: ``z_a + s * (z_b - z_a)``, exact at s = 0 and s = 1.

    Parameters
    ----------
    z_a, z_b : Tensor, (D,) or (N, D)
        The latent to keep and the one to take from.
    strengths : Tensor or float, (D,) in [0, 1]
        Per-dimension strength s: a 0/1 mask (from :func:`mask_for`) swaps whole dimensions, values
        between blend. Give a categorical block one strength so it stays a valid mixture.

    Returns
    -------
    Tensor
        Shaped like z_a.

    Raises
    ------
    ConfigError
        Shapes that differ, or strengths outside [0, 1].
    """
    z_a, z_b = torch.as_tensor(z_a), torch.as_tensor(z_b)
    if z_a.shape != z_b.shape:
        raise ConfigError(f"morph: z_a {tuple(z_a.shape)} and z_b {tuple(z_b.shape)} differ in shape")
    s = torch.as_tensor(strengths, dtype=z_a.dtype, device=z_a.device)
    if s.dim() > 0 and s.shape[-1] != z_a.shape[-1]:
        raise ConfigError(f"morph: {s.shape[-1]} strengths for {z_a.shape[-1]} dimensions")
    if not bool(((s >= 0) & (s <= 1)).all()):
        raise ConfigError("morph: strengths must lie in [0, 1]")
    return torch.lerp(z_a, z_b.to(z_a.dtype), s)


def mask_for(spec: LatentSpec, names: Sequence[str | int] | str, strength: float = 1.0) -> torch.Tensor:
    """A morph mask (D,) that is ``strength`` on the named dimensions and 0 elsewhere.

    A name may be a categorical group (all of its block, e.g. ``"class"`` of a conditional GAN,
    to change the class and keep the noise: content vs style), a dimension name (``"z3"``), or an
    integer index.

    Raises
    ------
    ConfigError
        An unknown name or an index out of range, or strength outside [0, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"mask_for: strength must lie in [0, 1], not {strength}")
    if isinstance(names, (str, int)):
        names = [names]
    groups = spec.categorical
    by_name = {n: i for i, n in enumerate(spec.names)}
    mask = torch.zeros(spec.dim)
    for name in names:
        if isinstance(name, int):
            if not 0 <= name < spec.dim:
                raise ConfigError(f"mask_for: index {name} is outside [0, {spec.dim})")
            idx = [name]
        elif name in groups:
            idx = groups[name]
        elif name in by_name:
            idx = [by_name[name]]
        else:
            raise ConfigError(
                f"mask_for: no latent dimension or group {name!r}; dimensions {list(spec.names)}, groups {list(groups)}"
            )
        mask[idx] = strength
    return mask


def arithmetic(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Latent vector arithmetic ``a - b + c`` (Radford, Metz & Chintala 2016, "vector arithmetic on
    face samples": smiling woman - neutral woman + neutral man = smiling man).

    Shapes broadcast, e.g. (D,) each -> (D,). Categorical blocks of the result need not be valid
    mixtures (average several latents per concept before, as the paper does).
    """
    return torch.as_tensor(a) - torch.as_tensor(b) + torch.as_tensor(c)

def traversal_latents(base: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """The (R*S, D) latents of a traversal: row r sets dimension ``dims[r]`` of ``base`` to each value.

    Parameters
    ----------
    base : Tensor
        (1, D) base latent.
    dims : list of int
        R dimension indices, one row each.
    values : Tensor
        (S,) values, one column each.
    """
    r, s = len(dims), len(values)
    z = base.reshape(1, 1, -1).repeat(r, s, 1)
    rows = torch.as_tensor(dims, device=z.device)
    z[torch.arange(r, device=z.device), :, rows] = values.to(z.dtype).unsqueeze(0).expand(r, s)
    return z.reshape(r * s, -1)
