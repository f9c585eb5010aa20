"""The Directions and Map tabs' Qt-free parts: the moved point, the local grid, a - b + c, and the map's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from engines.shared import protocol
from engines.shared.directions import DirectionSet
from studio.features.directions.state import LOCAL_COLUMNS, Arithmetic, DirectionEdit, local_grid
from studio.features.latent_map.state import LatentMap


def test_a_direction_edit_moves_the_base_in_units_of_each_directions_spread() -> None:
    edit = DirectionEdit()
    assert edit.z() is None and edit.caption() == "the point itself"
    edit.set_directions(DirectionSet(np.eye(4)[:2], [2.0, 0.5], ["PC1", "PC2"], [0.6, 0.2]))
    edit.set_base(np.ones(4))
    edit.set_coefficient(0, 1.5)
    edit.set_coefficient(1, -9.0)  # clamped to -3
    np.testing.assert_allclose(edit.z(), [1 + 3.0, 1 - 1.5, 1, 1])
    assert edit.caption() == "PC1 +1.5, PC2 -3.0" and edit.fits(4) and not edit.fits(5)
    lat = edit.traversal_latents(1)
    assert lat["names"] == ["PC2"] and lat["directions"] == [[0.0, 0.5, 0.0, 0.0]] and lat["dims"] is None
    np.testing.assert_allclose(lat["z"], edit.z())
    edit.set_base(np.zeros(4))  # a new base: back to the point itself
    np.testing.assert_array_equal(edit.z(), np.zeros(4))
    with pytest.raises(ValueError, match="find directions"):
        DirectionEdit().traversal_latents()


def test_the_local_grid_runs_each_direction_through_the_point() -> None:
    found = DirectionSet(np.eye(3)[:2], [1.0, 2.0], ["a", "b"])
    z = local_grid(np.array([1.0, 1.0, 1.0]), found)
    assert z.shape == (2 * LOCAL_COLUMNS, 3)
    np.testing.assert_allclose(z[LOCAL_COLUMNS // 2], [1, 1, 1])  # the middle column is the point
    np.testing.assert_allclose(z[0], [1 - 2.0, 1, 1])
    np.testing.assert_allclose(z[-1], [1, 1 + 4.0, 1])


def test_arithmetic_waits_for_three_points_of_one_width() -> None:
    arith = Arithmetic()
    arith.set("a", np.array([3.0, 1.0]), "held-out #3")
    arith.set("b", np.array([1.0, 1.0]), "held-out #7")
    assert arith.result() is None and arith.caption() == "held-out #3 - held-out #7 + ?"
    arith.set("c", np.array([0.0, 5.0]), "point")
    np.testing.assert_array_equal(arith.result(), [2.0, 5.0])
    arith.set("c", np.zeros(3), "wrong")
    assert arith.result() is None
    with pytest.raises(KeyError):
        arith.set("d", np.zeros(2), "x")


def _mapped(method: str = "pca") -> protocol.LatentMapped:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3)).astype(np.float32)
    centred = z - z.mean(0)
    xy = centred @ np.linalg.svd(centred)[2][:2].T if method == "pca" else rng.normal(size=(40, 2))
    return protocol.LatentMapped(method=method, xy=xy.astype(np.float32), z=z,
                                 images=rng.integers(0, 255, (40, 1, 4, 4), dtype=np.uint8),
                                 indices=np.arange(40, dtype=np.int64) + 100, labels=np.arange(40, dtype=np.int64) % 3,
                                 class_names=["a", "b", "c"], source="posterior means")


def test_a_pca_map_places_new_points_by_its_projection_and_a_click_gives_a_points_z() -> None:
    m = LatentMap(_mapped("pca"))
    np.testing.assert_allclose(m.place(m.z[:5]), m.xy[:5], atol=1e-5)
    np.testing.assert_allclose(m.z_at(*m.xy[7], radius=1e-3), m.z[7])
    assert m.pick(*(m.xy[7] + 100), radius=1.0) is None
    assert m.colour_options() == ["class", "none"] and len(set(m.colours("class"))) == 3
    assert m.describe(4) == "held-out #104, class b"
    assert m.thumbnail(0).max() <= 1.0 and m.thumbnail(0).dtype == np.float32
    everything = m.lasso(np.array([[-1e3, -1e3], [1e3, -1e3], [1e3, 1e3], [-1e3, 1e3]]))
    assert len(everything) == 40
    keys = m.path_keyframes(np.array([m.xy[0], m.xy[1]]), 4)
    assert keys.shape == (4, 3)
    np.testing.assert_allclose(keys[0], m.z[0], atol=1e-6)
    np.testing.assert_allclose(keys[-1], m.z[1], atol=1e-6)


def test_a_tsne_map_places_a_map_latent_on_its_own_point() -> None:
    m = LatentMap(_mapped("tsne"))
    np.testing.assert_allclose(m.place(m.z[[2, 9]]), m.xy[[2, 9]], atol=1e-6)
    with pytest.raises(ValueError, match="width"):
        m.place(np.zeros(5))


def test_groups_hold_held_out_positions_and_dropped_images() -> None:
    from studio.features.directions.state import Groups

    g = Groups()
    assert not g.ready() and g.fields() == {"group_a": [], "group_b": []}
    g.positions["a"] += [3, 4]
    g.images["b"].append(np.zeros((1, 4, 4), np.float32))
    assert g.ready() and g.sizes() == {"a": 2, "b": 1}
    f = g.fields()
    assert f["group_a"] == [3, 4] and f["images_b"].shape == (1, 1, 4, 4) and "images_a" not in f
    assert g.caption().startswith("group A: 2 images, group B: 1 images")
