"""One image file a user hands us, read as a model input: untrusted, checked before it is decoded.

Both processes use it: the window reads dropped files itself (they travel to the worker as arrays,
so a worker on another machine never needs the user's paths), and the data loaders read folders
of images with the same functions. numpy and Pillow only: no torch, no Qt.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engines.shared.errors import DataError

#: Smallest and largest image side a data set may have (pixels).
MIN_SIZE, MAX_SIZE = 8, 64
#: Largest side of an image in a user's file (pixels); anything larger is refused as absurd.
MAX_SIDE = 4096

#: The only formats a user's image is opened as. Pillow otherwise picks a decoder by the file's content, and
#: for PostScript (EPS) content that is Ghostscript: a file named ``.png`` could run a program (issue 12).
RASTER_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

_BICUBIC = Image.Resampling.BICUBIC
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def _crop_box(w: int, h: int) -> tuple[int, int, int, int]:
    """The centred square (left, top, right, bottom) of a w x h image."""
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return left, top, left + s, top + s


def _probe(path: str) -> tuple[int, int, bool]:
    """(width, height, is colour) of an image file, from its header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=RASTER_FORMATS) as im:
                w, h = im.size
                colour = im.mode not in _GREY_MODES
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: not an image of a format we read ({', '.join(RASTER_FORMATS)}), "
                        f"or absurdly large") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types on hostile files
        raise DataError(f"{path}: cannot be read as an image ({e})") from None
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise DataError(f"{path}: absurd image size {w}x{h} (sides must be 1..{MAX_SIDE})")
    return w, h, colour


def _load_image(path: str, channels: int, size: int) -> np.ndarray:
    """One image file as (channels, size, size) float32 in [0, 1]."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd palettes and EXIF; the pixels are what matter
            with Image.open(path, formats=RASTER_FORMATS) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                box = _crop_box(*im.size)
                if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey
                    scale = 65535.0 if im.mode.startswith("I") else 1.0
                    a = np.clip(np.asarray(im, np.float32) / np.float32(scale), 0.0, 1.0)
                    g = np.asarray(Image.fromarray(a).resize((size, size), _BICUBIC, box=box))
                    return np.repeat(np.clip(g, 0.0, 1.0)[None], channels, axis=0)
                if im.mode == "P" and "transparency" in im.info:
                    im = im.convert("RGBA")
                im = im.convert("RGB" if channels == 3 else "L").resize((size, size), _BICUBIC, box=box)
                a = np.asarray(im, np.float32) / np.float32(255.0)
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise DataError(f"{path}: not an image Pillow can read") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types on hostile files
        raise DataError(f"{path}: cannot be read as an image ({e})") from None
    return a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)


def load_image_file(path: str, channels: int, size: int, invert: bool | None = None) -> np.ndarray:
    """One image file a user hands us (a dropped file, a CLI ``--from PATH``) as a model input.

    The file is untrusted: its header is checked first (size, decompression bombs), then it is
    centre-cropped to a square, resized (bicubic) and converted to grey or RGB.

    Parameters
    ----------
    path : str
        Image file (PNG, JPEG, BMP, ...).
    channels : {1, 3}
        Channels of the model's images.
    size : int
        Side of the model's square images, in pixels.
    invert : bool or None
        Invert the values (1 - x). None: invert when the image's border is mostly bright, so a dark
        digit drawn on white paper matches MNIST-style white-on-black data.

    Returns
    -------
    (channels, size, size) float32 in [0, 1].

    Raises
    ------
    DataError
        If the file is missing, not an image Pillow can read, or absurdly large; the message names the file.
    """
    if channels not in (1, 3) or not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise DataError(f"{path}: cannot load for a model of {channels} channels and side {size}")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    _probe(path)
    x = _load_image(path, channels, int(size))
    if invert is None:
        border = np.concatenate([x[:, 0, :].ravel(), x[:, -1, :].ravel(), x[:, :, 0].ravel(), x[:, :, -1].ravel()])
        invert = bool(border.mean() > 0.5)
    return (1.0 - x).astype(np.float32) if invert else x
