"""Issue 5's "Done when", as a user does it, in the real window with the real worker.

Two of the user's own digit images (dark ink on white paper, drawn here with Pillow) are dropped
on the window, one is morphed toward the other (exported as a GIF), the path between them is exported as a GIF and an
MP4, and ``latent-studio render`` re-renders the GIF from its sidecar byte for byte. A VAE maps the
images to z with its encoder, a GAN by projection (progress shown in the browser).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engines.shared import protocol
from test_browser import drop
from workers import real_window

pytestmark = [pytest.mark.slow, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]


def _digit_png(path, strokes) -> None:
    """A 64x64 black-on-white drawing of line strokes, like a digit drawn in a paint program."""
    im = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(im).line(strokes, fill=0, width=7)
    im.save(path)


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_drop_morph_export_and_render(qtbot, tmp_path, model) -> None:
    import latent_studio
    from engines.shared.media import read_frame_count
    one, seven = tmp_path / "one.png", tmp_path / "seven.png"
    _digit_png(one, [(32, 8), (32, 56)])
    _digit_png(seven, [(12, 10), (52, 10), (26, 56)])
    with real_window(tmp_path / "home") as w:
        client = w.client
        qtbot.waitUntil(lambda: client.state == "idle", timeout=90_000)
        with qtbot.waitSignal(client.ready, timeout=60_000):
            w.configure(protocol.Configure(data="digits", model=model, latent_dim=4, seed=1, batch_size=32))
        with qtbot.waitSignal(client.stopped, timeout=120_000):
            w.train(steps=150)  # an untrained GAN draws one blur for every z: nothing to project onto
        with qtbot.waitSignal(w.browser.images_loaded, timeout=10_000):
            drop(w, w.browser, [one, seven])
        keys = w.browser.view.user_keys()
        assert len(keys) == 2
        a_image = w.browser.user[keys[0]][0]
        side = a_image.shape[-1]
        assert a_image.shape == (1, side, side) and a_image[0, side // 2, side // 2] > 0.5  # inverted: white ink on black
        assert a_image[0, 1, 1] < 0.5

        # morph the "1" toward the "7": every dimension at half strength
        assert w.browser.act("morph-a", "yours", keys[0]) and w.browser.act("morph-b", "yours", keys[1])
        qtbot.waitUntil(lambda: w.morph.slots["A"].z is not None and w.morph.slots["B"].z is not None, timeout=60_000)
        w.morph.view.all_button.click()
        z_a, z_b = w.morph.slots["A"].z, w.morph.slots["B"].z
        assert not np.allclose(z_a, z_b)
        rid = client.last_requested("morph")
        qtbot.waitUntil(lambda: client.last_delivered("morph") >= rid, timeout=20_000)
        assert w.morph.view.result_picture().shape == (1, side, side)

        # the two images as keyframes of an interpolation, exported as GIF and MP4
        assert w.browser.act("keyframe", "yours", keys[0]) and w.browser.act("keyframe", "yours", keys[1])
        qtbot.waitUntil(lambda: len(w.interpolation.view.keyframes()) == 2, timeout=60_000)
        done = []
        client.exported.connect(done.append)
        gif, mp4 = tmp_path / "out" / "path.gif", tmp_path / "out" / "path.mp4"
        gif.parent.mkdir()
        morph_gif = tmp_path / "out" / "morph.gif"
        assert w.interpolation.export_gif(gif) and w.interpolation.export_mp4(mp4)
        assert w.morph.export(morph_gif, "animation")
        qtbot.waitUntil(lambda: len(done) == 3, timeout=60_000)
        frames = w.interpolation.view.n_frames()
        assert read_frame_count(mp4) == frames
        assert 2 <= read_frame_count(gif) <= frames  # Pillow merges identical consecutive GIF frames

        # re-render from the sidecar, headless
        again = tmp_path / "again.gif"
        assert latent_studio.main(["render", str(gif) + ".json", "--out", str(again)]) == 0
        assert again.read_bytes() == gif.read_bytes()
        assert latent_studio.main(["render", str(morph_gif) + ".json", "--out", str(again)]) == 0
        assert again.read_bytes() == morph_gif.read_bytes()
