"""Media writers for exports: PNG strips and grids, GIF (Pillow) and MP4 (imageio + imageio-ffmpeg).

numpy, Pillow and imageio only (no torch), so the studio may import this module. Frames come in as

- images: (F, C, H, W) float in [0, 1], C in {1, 3}; or already prepared (F, H, W, 3) uint8;
- 2-D points: (F, N, 2) float, N points per frame (non-finite points are skipped, so a frame may
  be padded with NaN), drawn with :func:`engines.shared.imaging.plot_points` on one extent for all frames.

Every writer first calls :func:`prepare_frames`, then writes to a temporary file beside the target
and renames it into place, so a failed or cancelled write never leaves a partial file. The same
frames and settings always give the same PNG and GIF bytes; MP4 is made as reproducible as
ffmpeg allows (libx264, fixed CRF, bit-exact flags, one encoder thread, no metadata).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engines.shared.errors import ExportCancelled, ExportError
from engines.shared.imaging import plot_points, to_uint8

RESAMPLE = ("nearest", "lanczos")
#: Height of the label band under each frame, px.
LABEL_HEIGHT = 12
#: Side of a point-plot frame when no size is given, px.
POINTS_SIZE = 256
#: Columns of a PNG strip when none is given (at most).
STRIP_COLUMNS = 12
#: Pixels between cells of a PNG strip or grid.
PAD = 1
#: Grey level of the padding between cells (0-255).
PAD_VALUE = 90
#: x264 constant rate factor of MP4 exports (lower is better; 18 is visually lossless).
MP4_CRF = 18
SUFFIXES = (".gif", ".mp4", ".png")


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ExportCancelled("export cancelled")


def _points_extent(points: np.ndarray, modes: np.ndarray | None) -> float:
    ref = points.reshape(-1, 2)
    if modes is not None:
        ref = np.concatenate([ref, np.asarray(modes, np.float64).reshape(-1, 2)])
    ref = ref[np.isfinite(ref).all(axis=1)]
    return float(np.abs(ref).max()) * 1.25 + 0.25 if len(ref) else 1.0


def _upscale(frames: np.ndarray, size: int | None, resample: str) -> np.ndarray:
    """(F, H, W, 3) uint8 to the target longest side ``size`` (see :func:`prepare_frames`)."""
    if resample not in RESAMPLE:
        raise ExportError(f"unknown resampling {resample!r}; use one of {', '.join(RESAMPLE)}")
    if size is None:
        return frames
    if isinstance(size, bool) or int(size) != size or not 1 <= size <= 8192:
        raise ExportError(f"size must be an integer number of pixels in [1, 8192], not {size!r}")
    f, h, w, _ = frames.shape
    longest = max(h, w)
    if resample == "nearest":
        k = max(1, int(round(size / longest)))
        return frames if k == 1 else frames.repeat(k, axis=1).repeat(k, axis=2)
    new = (max(1, int(round(w * size / longest))), max(1, int(round(h * size / longest))))
    if new == (w, h):
        return frames
    return np.stack([np.asarray(Image.fromarray(fr).resize(new, Image.Resampling.LANCZOS)) for fr in frames])


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _add_labels(frames: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A LABEL_HEIGHT band under each (H, W, 3) frame with its label, white on dark grey, centred."""
    f, h, w, _ = frames.shape
    if len(labels) != f:
        raise ExportError(f"{len(labels)} labels for {f} frames")
    font = _font()
    out = np.empty((f, h + LABEL_HEIGHT, w, 3), np.uint8)
    out[:, :h] = frames
    for i, text in enumerate(labels):
        band = Image.new("RGB", (w, LABEL_HEIGHT), (32, 32, 32))
        draw = ImageDraw.Draw(band)
        draw.text((w / 2, LABEL_HEIGHT / 2), str(text), fill=(255, 255, 255), font=font, anchor="mm")
        out[i, h:] = np.asarray(band)
    return out


def prepare_frames(
    frames: np.ndarray,
    size: int | None = None,
    resample: str = "nearest",
    modes: np.ndarray | None = None,
    labels: list[str] | None = None,
) -> np.ndarray:
    """Frames as RGB uint8 pictures, upscaled and labelled: what every writer here writes.

    Parameters
    ----------
    frames : (F, C, H, W) float in [0, 1] with C in {1, 3}; (F, N, 2) float points; or (F, H, W, 3) uint8
        Images (values outside [0, 1] are clipped; grey is repeated to RGB), 2-D points (each
        frame drawn by :func:`engines.shared.imaging.plot_points` on a (size or POINTS_SIZE) px square,
        with one extent for all frames, non-finite points skipped), or frames already prepared
        (passed through unchanged but for ``labels``; ``size`` is ignored for them).
    size : int or None
        Target longest side of each image frame, px. ``"nearest"`` upscales by the integer factor
        ``max(1, round(size / max(H, W)))`` (so the side is that multiple of H or W, never
        blurred); ``"lanczos"`` resizes so the longest side is exactly ``size`` (aspect kept,
        down or up). None keeps the model's size.
    resample : {"nearest", "lanczos"}
    modes : (M, 2) float or None
        Mode centres drawn as red crosses on point frames.
    labels : list of str or None
        One label per frame, drawn under it (Pillow's default font) in a band of LABEL_HEIGHT px,
        so H' = H * k + LABEL_HEIGHT.

    Returns
    -------
    (F, H', W', 3) uint8 array.

    Raises
    ------
    ExportError
        Frames of another shape, no frame, an unknown ``resample``, a bad ``size``, or a number of
        labels other than F.
    """
    x = np.asarray(frames)
    if x.dtype == np.uint8 and x.ndim == 4 and x.shape[-1] == 3 and x.shape[0] > 0:
        out = x
    elif x.ndim == 3 and x.shape[-1] == 2 and x.shape[0] > 0:
        pts = x.astype(np.float64)
        side = int(size) if size else POINTS_SIZE
        if not 8 <= side <= 8192:
            raise ExportError(f"size of a point plot must lie in [8, 8192] px, not {size!r}")
        extent = _points_extent(pts, modes)
        out = np.stack([to_uint8(plot_points(p, modes=modes, size=side, extent=extent)) for p in pts])
    elif x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[0] > 0 and x.dtype.kind in "fiu":
        out = to_uint8(x)
        if out.shape[-1] == 1:
            out = np.repeat(out, 3, axis=-1)
        out = _upscale(out, size, resample)
    else:
        raise ExportError(
            f"frames must be (F, 1|3, H, W) images, (F, N, 2) points or (F, H, W, 3) uint8 with F >= 1, "
            f"not {x.dtype} {x.shape}"
        )
    if labels is not None:
        out = _add_labels(out, labels)
    return np.ascontiguousarray(out)


def _atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Any exception (a cancel included) removes the temporary file and leaves ``path`` untouched.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"{path}: the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.partial{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc})") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _fps(fps: float) -> float:
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise ExportError(f"fps must be a number, not {fps!r}") from None
    if not 0.1 <= fps <= 120:
        raise ExportError(f"fps must lie in [0.1, 120], not {fps}")
    return fps


#: Image frames prepared (upscaled, labelled) at a time by the GIF and MP4 writers.
PREPARE_CHUNK = 16


def _prepared_chunks(frames: np.ndarray, size: int | None, resample: str, modes: np.ndarray | None,
                     labels: list[str] | None):  # noqa: ANN202 - a generator of (K, H', W', 3) uint8
    """:func:`prepare_frames` a chunk at a time for image frames (each frame is prepared alone anyway), so a long
    export never holds all its upscaled pictures; point frames share one extent, so they are prepared at once."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.dtype == np.uint8:
        yield prepare_frames(frames, size, resample, modes, labels)
        return
    if labels is not None and len(labels) != len(x):
        raise ExportError(f"{len(labels)} labels for {len(x)} frames")
    if len(x) == 0:
        raise ExportError("no frames to write")
    for i in range(0, len(x), PREPARE_CHUNK):
        yield prepare_frames(x[i: i + PREPARE_CHUNK], size, resample, modes,
                             None if labels is None else labels[i: i + PREPARE_CHUNK])


def _is_grey(frames: np.ndarray) -> bool | None:
    """Whether image frames are grey (one channel, or three equal ones); None for frames that must be looked at
    after preparing (points, prepared uint8)."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.dtype == np.uint8:
        return None
    return x.shape[1] == 1 or bool((x[:, 0] == x[:, 1]).all() and (x[:, 0] == x[:, 2]).all())


def write_gif(
    frames: np.ndarray,
    path: str | Path,
    fps: float = 12,
    size: int | None = None,
    resample: str = "nearest",
    modes: np.ndarray | None = None,
    loop: int = 0,
    labels: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write an animated GIF with Pillow; deterministic (same frames, same bytes).

    Grey frames are written as 8-bit grey exactly; colour frames get a palette of their own
    (median cut, 256 colours, Floyd-Steinberg dithering). Each frame lasts ``1000 / fps`` ms,
    stored in GIF's 10 ms units (at least 20 ms). Pillow merges identical consecutive frames into
    one longer frame, so :func:`read_frame_count` may read back fewer frames than F (timing kept).

    Parameters
    ----------
    frames, size, resample, modes, labels
        As :func:`prepare_frames`.
    path : path
        The .gif file to write.
    fps : float
        Frames per second, in [0.1, 120].
    loop : int
        Times to loop; 0 forever.
    cancel : threading.Event or None
        Checked between frames; when set, raises ExportCancelled and writes nothing.

    Returns
    -------
    Path

    Raises
    ------
    ExportError
        As :func:`prepare_frames`, a bad fps, or a file that cannot be written.
    ExportCancelled
        If ``cancel`` is set.
    """
    fps = _fps(fps)
    grey = _is_grey(frames)
    images = []  # one byte a pixel (grey or a palette): a third of the RGB pictures, prepared a chunk at a time
    for pics in _prepared_chunks(frames, size, resample, modes, labels):
        if grey is None:
            grey = bool((pics[..., 0] == pics[..., 1]).all() and (pics[..., 0] == pics[..., 2]).all())
        for fr in pics:
            _check_cancel(cancel)
            im = Image.fromarray(np.ascontiguousarray(fr[..., 0]) if grey else fr)
            if not grey:
                im = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
            images.append(im)
    duration = max(20, int(round(1000.0 / fps)))
    _check_cancel(cancel)

    def write(tmp: Path) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=int(loop), disposal=1, optimize=False)

    return _atomic(path, write)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad (F, H, W, 3) on the bottom and right by edge copies to even H and W (yuv420p needs them)."""
    h, w = frames.shape[1:3]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frames
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def write_mp4(
    frames: np.ndarray,
    path: str | Path,
    fps: float = 24,
    size: int | None = None,
    resample: str = "nearest",
    modes: np.ndarray | None = None,
    labels: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write an H.264 MP4 with imageio and imageio-ffmpeg's ffmpeg (libx264, yuv420p).

    Odd heights or widths are padded by one edge row or column to even sides (yuv420p needs them);
    quality is fixed (CRF :data:`MP4_CRF`, preset medium), with one encoder thread, bit-exact flags
    and no metadata, so the same frames give the same file with the same ffmpeg build.

    Parameters
    ----------
    frames, size, resample, modes, labels
        As :func:`prepare_frames`.
    path : path
        The .mp4 file to write.
    fps : float
        Frames per second, in [0.1, 120].
    cancel : threading.Event or None
        Checked between frames; when set, raises ExportCancelled and removes the partial file.

    Raises
    ------
    ExportError
        As :func:`prepare_frames`, a bad fps, or ffmpeg failing (the message names the file).
    ExportCancelled
        If ``cancel`` is set.
    """
    import imageio.v2 as iio

    fps = _fps(fps)
    chunks = _prepared_chunks(frames, size, resample, modes, labels)  # streamed: one chunk held at a time
    first = _even(next(chunks))

    def write(tmp: Path) -> None:
        try:
            writer = iio.get_writer(
                str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                quality=None, macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-crf", str(MP4_CRF), "-preset", "medium", "-threads", "1",
                               "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"],
            )
        except Exception as exc:  # imageio raises plain RuntimeError/ValueError for a missing ffmpeg
            raise ExportError(f"{path}: cannot start ffmpeg ({exc})") from exc
        try:
            for pics in itertools.chain([first], (_even(c) for c in chunks)):
                for fr in pics:
                    _check_cancel(cancel)
                    writer.append_data(fr)
        except (ExportCancelled, ExportError):
            raise
        except Exception as exc:
            raise ExportError(f"{path}: ffmpeg failed ({exc})") from exc
        finally:
            try:
                writer.close()
            except Exception:  # a cancelled or failed stream: the partial file is removed anyway
                pass

    return _atomic(path, write)


def grid_picture(pics: np.ndarray, ncols: int | None = None) -> np.ndarray:
    """Tile prepared (F, H, W, 3) uint8 frames into one (H', W', 3) uint8 picture.

    ``ncols`` columns (default ``min(F, STRIP_COLUMNS)``), PAD px of grey PAD_VALUE between cells.
    """
    f, h, w, _ = pics.shape
    ncols = int(ncols) if ncols else min(f, STRIP_COLUMNS)
    if ncols < 1:
        raise ExportError(f"ncols must be at least 1, not {ncols}")
    ncols = min(ncols, f)
    rows = math.ceil(f / ncols)
    out = np.full((rows * (h + PAD) - PAD, ncols * (w + PAD) - PAD, 3), PAD_VALUE, np.uint8)
    for i, fr in enumerate(pics):
        r, c = divmod(i, ncols)
        out[r * (h + PAD) : r * (h + PAD) + h, c * (w + PAD) : c * (w + PAD) + w] = fr
    return out


def write_png_strip(
    frames: np.ndarray,
    path: str | Path,
    size: int | None = None,
    resample: str = "nearest",
    modes: np.ndarray | None = None,
    labels: list[str] | None = None,
    ncols: int | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write frames as one PNG: a strip or grid of cells, each upscaled and optionally labelled.

    Parameters
    ----------
    frames, size, resample, modes, labels
        As :func:`prepare_frames` (``size`` applies to each cell).
    path : path
        The .png file to write.
    ncols : int or None
        Columns of the grid (see :func:`grid_picture`).
    cancel : threading.Event or None
        When set, raises ExportCancelled and writes nothing.

    Returns
    -------
    Path
        The picture is (rows * (H' + PAD) - PAD, ncols * (W' + PAD) - PAD) px, RGB, or grey where
        every pixel is grey.

    Raises
    ------
    ExportError
        As :func:`prepare_frames`, or a file that cannot be written.
    ExportCancelled
        If ``cancel`` is set.
    """
    pic = grid_picture(prepare_frames(frames, size, resample, modes, labels), ncols)
    _check_cancel(cancel)
    grey = bool((pic[..., 0] == pic[..., 1]).all() and (pic[..., 0] == pic[..., 2]).all())
    im = Image.fromarray(np.ascontiguousarray(pic[..., 0]) if grey else pic)
    return _atomic(path, lambda tmp: im.save(tmp, format="PNG"))


def write_animation(
    frames: np.ndarray,
    path: str | Path,
    fps: float,
    size: int | None = None,
    resample: str = "nearest",
    modes: np.ndarray | None = None,
    labels: list[str] | None = None,
    ncols: int | None = None,
    loop: int = 0,
    cancel: threading.Event | None = None,
) -> Path:
    """Write frames by the suffix of ``path``: ``.gif`` (:func:`write_gif`), ``.mp4``
    (:func:`write_mp4`) or ``.png`` (:func:`write_png_strip`, ``fps`` unused).

    Raises
    ------
    ExportError
        Another suffix, or any error of the writer.
    ExportCancelled
        If ``cancel`` is set.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(frames, path, fps, size, resample, modes, loop, labels=labels, cancel=cancel)
    if suffix == ".mp4":
        return write_mp4(frames, path, fps, size, resample, modes, labels=labels, cancel=cancel)
    if suffix == ".png":
        return write_png_strip(frames, path, size, resample, modes, labels, ncols, cancel=cancel)
    raise ExportError(f"{path}: unknown output type {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}")


def write_latents(z: np.ndarray, path: str | Path) -> Path:
    """Write latent vectors or a path, (F, D) float, as ``.npy`` (float32, no pickle) or ``.json``
    (``{"z": [[D floats], ...]}``).

    Raises
    ------
    ExportError
        z not 2-D or not finite, another suffix, or a file that cannot be written.
    """
    import json

    z = np.asarray(z, dtype=np.float32)
    path = Path(path)
    if z.ndim != 2 or not np.isfinite(z).all():
        raise ExportError(f"{path}: latents must be a finite (F, D) array, not {z.dtype} {z.shape}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".json"):
        raise ExportError(f"{path}: latents are written as .npy or .json, not {suffix or '(none)'!r}")

    def write(tmp: Path) -> None:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, z, allow_pickle=False)
        else:
            tmp.write_text(json.dumps({"z": z.astype(np.float64).tolist()}), encoding="utf-8")

    return _atomic(path, write)


def read_frame_count(path: str | Path) -> int:
    """Number of frames in a GIF (Pillow), an MP4 (imageio-ffmpeg) or a PNG (1).

    Raises
    ------
    ExportError
        A missing file, another suffix, or a file that cannot be read; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".gif", ".png"):
            with Image.open(path, formats=("GIF", "PNG")) as im:  # never a decoder picked by content
                return int(getattr(im, "n_frames", 1))
        if suffix == ".mp4":
            import imageio_ffmpeg

            return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
    except Exception as exc:  # Pillow and ffmpeg raise a variety of errors for bad files
        raise ExportError(f"{path}: cannot read ({exc})") from exc
    raise ExportError(f"{path}: unknown media type {suffix!r}")
