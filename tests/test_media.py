"""engines.shared.media: GIF, MP4 and PNG writers (no torch), sizes, labels, points, cancel."""

from __future__ import annotations

import threading

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from engines.shared import media
from engines.shared.errors import ExportCancelled, ExportError


def _frames(n: int = 6, c: int = 1, h: int = 8, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def test_media_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, engines.shared.media; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_gif_round_trip_frame_count_and_pixels(tmp_path) -> None:
    x = _frames(7)
    path = media.write_gif(x, tmp_path / "a.gif", fps=10, size=16)
    assert media.read_frame_count(path) == 7
    expected = media.prepare_frames(x, size=16)
    with Image.open(path) as im:
        assert im.size == (16, 16)
        assert im.info["duration"] == 100 and im.info["loop"] == 0
        for i in range(7):
            im.seek(i)
            got = np.asarray(im.convert("L"))
            assert np.array_equal(got, expected[i, ..., 0])  # grey frames are stored exactly
    again = media.write_gif(x, tmp_path / "b.gif", fps=10, size=16)
    assert again.read_bytes() == path.read_bytes()  # deterministic


def test_colour_gif_keeps_every_distinct_frame(tmp_path) -> None:
    path = media.write_gif(_frames(5, c=3), tmp_path / "c.gif")
    assert media.read_frame_count(path) == 5
    with Image.open(path) as im:
        assert im.mode == "P"


def test_mp4_frame_count_and_even_sides(tmp_path) -> None:
    x = _frames(9, c=3, h=7, w=5)
    path = media.write_mp4(x, tmp_path / "a.mp4", fps=24)
    assert media.read_frame_count(path) == 9
    video = iio.imread(path, index=None)
    assert video.shape == (9, 8, 6, 3)  # 7 x 5 padded to 8 x 6 for yuv420p
    again = media.write_mp4(x, tmp_path / "b.mp4", fps=24)
    assert again.read_bytes() == path.read_bytes()


def test_nearest_upscaling_is_an_integer_factor() -> None:
    x = _frames(2, h=8, w=6)
    assert media.prepare_frames(x).shape == (2, 8, 6, 3)
    out = media.prepare_frames(x, size=30)  # 30 / 8 = 3.75 -> factor 4
    assert out.shape == (2, 32, 24, 3)
    assert np.array_equal(out[:, ::4, ::4], media.prepare_frames(x))
    assert media.prepare_frames(x, size=3).shape == (2, 8, 6, 3)  # never below factor 1


def test_lanczos_hits_the_size_exactly() -> None:
    out = media.prepare_frames(_frames(2, h=8, w=6), size=30, resample="lanczos")
    assert out.shape == (2, 30, 22, 3)  # longest side 30, aspect kept (6 * 30 / 8 = 22.5 -> 22)


def test_labels_add_a_band_under_each_frame() -> None:
    x = _frames(3)
    plain = media.prepare_frames(x, size=32)
    labelled = media.prepare_frames(x, size=32, labels=["a", "bb", "ccc"])
    assert labelled.shape == (3, 32 + media.LABEL_HEIGHT, 32, 3)
    assert np.array_equal(labelled[:, :32], plain)
    band = labelled[:, 32:]
    assert (band > 150).any() and (band == 32).any()  # light text on the dark band
    assert not np.array_equal(band[0], band[2])
    with pytest.raises(ExportError, match="2 labels for 3 frames"):
        media.prepare_frames(x, labels=["a", "b"])


def test_png_strip_layout(tmp_path) -> None:
    x = _frames(10, h=8, w=8)
    path = media.write_png_strip(x, tmp_path / "s.png", size=16, ncols=4, labels=[str(i) for i in range(10)])
    with Image.open(path) as im:
        h = 16 + media.LABEL_HEIGHT
        assert im.size == (4 * 17 - 1, 3 * (h + 1) - 1)
    path = media.write_png_strip(x, tmp_path / "t.png")
    with Image.open(path) as im:
        assert im.size == (10 * 9 - 1, 8) and im.mode == "L"


def test_points_frames_are_plotted_on_one_extent(tmp_path) -> None:
    pts = np.full((4, 4, 2), np.nan, np.float32)
    path = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, -1.0]], np.float32)
    for t in range(4):
        pts[t, : t + 1] = path[: t + 1]  # a trail, NaN-padded
    modes = np.array([[3.0, 3.0]])
    out = media.prepare_frames(pts, size=64, modes=modes)
    assert out.shape == (4, 64, 64, 3)
    white = [(f == 255).all(-1).sum() for f in out]
    assert white == sorted(white) and white[0] >= 1 and white[-1] > white[0]  # the trail grows
    red = (out[..., 0] == 255) & (out[..., 1] == 0)
    assert red.any(axis=(1, 2)).all()  # the mode's cross in every frame
    assert np.array_equal(red[0], red[3])  # at the same place: one extent
    gif = media.write_animation(pts, tmp_path / "p.gif", fps=5, modes=modes)
    assert media.read_frame_count(gif) == 4


def test_bad_input_and_cancel(tmp_path) -> None:
    with pytest.raises(ExportError, match="frames must be"):
        media.prepare_frames(np.zeros((3, 4, 8, 8), np.float32))
    with pytest.raises(ExportError, match="resampling"):
        media.prepare_frames(_frames(1), size=16, resample="cubic")
    with pytest.raises(ExportError, match="unknown output type"):
        media.write_animation(_frames(2), tmp_path / "a.avi", fps=5)
    with pytest.raises(ExportError, match="does not exist"):
        media.write_gif(_frames(2), tmp_path / "missing" / "a.gif")
    with pytest.raises(ExportError, match="no such file"):
        media.read_frame_count(tmp_path / "none.gif")
    cancel = threading.Event()
    cancel.set()
    for name in ("c.gif", "c.mp4", "c.png"):
        with pytest.raises(ExportCancelled):
            media.write_animation(_frames(3), tmp_path / name, fps=5, cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no partial file


def test_an_mp4_is_streamed_a_few_frames_at_a_time(tmp_path) -> None:
    """160 frames at 512 px are 126 MB as RGB pictures: the writer holds a chunk of them, not all (issue 12)."""
    import tracemalloc

    from engines.shared.media import read_frame_count, write_mp4

    frames = np.random.default_rng(0).random((160, 1, 16, 16)).astype(np.float32)
    tracemalloc.start()
    write_mp4(frames, tmp_path / "long.mp4", fps=24, size=512)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert read_frame_count(tmp_path / "long.mp4") == 160
    assert peak < 70 * 2**20, peak / 2**20  # about 40 MB: one chunk and the encoder's buffers
