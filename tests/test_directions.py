"""Directions in z and the map's geometry: known answers on hand-made latents, files checked as untrusted,
and the shapes demo's x factor recovered by PCA and by the attribute direction."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engines.lib import directions as D
from engines.shared import latent_map as M
from engines.shared.directions import DirectionSet, arithmetic
from engines.shared.errors import ConfigError, DataError

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demos" / "beta-vae-shapes" / "model.safetensors"


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_pca_recovers_the_axes_of_an_anisotropic_gaussian_with_their_shares() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    sd = np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    z = (rng.normal(size=(4000, 6)) * sd) @ q.T + 7.0
    found = D.principal_directions(z, 3)
    for i in range(3):
        assert _cos(found.vectors[i], q[:, i]) > 0.999
    np.testing.assert_allclose(found.scales, sd[:3], rtol=0.05)
    np.testing.assert_allclose(found.explained, sd[:3] ** 2 / (sd**2).sum(), rtol=0.05)
    assert found.names == ["PC1", "PC2", "PC3"]


def test_ganspace_regression_carries_feature_components_back_to_z() -> None:
    """Prior draws are isotropic; a first layer that stretches one z direction makes it the top component."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 5))
    u = np.array([1.0, 2.0, 0.0, -1.0, 0.5])
    u /= np.linalg.norm(u)
    w = rng.normal(size=(5, 40)) * 0.05 + 4.0 * np.outer(u, rng.normal(size=40))
    features = np.maximum(z @ w, 0.0) + z @ w  # a leaky first layer
    assert D.principal_directions(z, 1).explained[0] < 0.3  # PCA of z itself finds nothing
    found = D.principal_directions(z, 1, features)
    assert _cos(found.vectors[0], u) > 0.95
    np.testing.assert_allclose(found.scales[0], 1.0, rtol=0.1)  # spread of the prior along it


def test_ica_unmixes_independent_heavy_tailed_sources() -> None:
    rng = np.random.default_rng(2)
    s = rng.laplace(size=(5000, 3)) * [3.0, 2.0, 1.0]
    a = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.5, 0.0, 1.0]])
    z = s @ a.T
    found = D.independent_directions(z, 3)
    for col in a.T:  # every mixing column is one of the directions
        assert max(_cos(v, col) for v in found.vectors) > 0.99
    assert (np.diff(found.explained) <= 1e-9).all()


def test_attribute_directions_by_mean_difference_and_by_a_linear_model() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 4))
    axis = np.array([0.0, 1.0, 0.0, 0.0])
    labels = z @ axis + 0.1 * rng.normal(size=2000) > 0.3
    for est in ("mean", "linear"):
        found = D.attribute_direction(z, labels, est, "smile")
        assert _cos(found.vectors[0], axis) > 0.97 and found.names == ["smile"]
    factor = 2.0 * z[:, 2] + 0.1 * rng.normal(size=2000)  # a real-valued factor
    mean = D.attribute_direction(z, factor, "mean")
    assert _cos(mean.vectors[0], np.eye(4)[2]) > 0.97
    assert mean.scales[0] == pytest.approx(np.linalg.norm(z[factor >= np.quantile(factor, 2 / 3)].mean(0)
                                                          - z[factor <= np.quantile(factor, 1 / 3)].mean(0)))
    assert _cos(D.attribute_direction(z, factor, "linear").vectors[0], np.eye(4)[2]) > 0.99
    with pytest.raises(DataError, match="both groups"):
        D.attribute_direction(z, np.zeros(2000, bool))
    with pytest.raises(DataError, match="constant"):
        D.attribute_direction(z, np.full(2000, 3.0))
    with pytest.raises(ConfigError, match="estimator"):
        D.attribute_direction(z, labels, "svm")


def test_local_directions_follow_the_neighbourhood_not_the_whole_set() -> None:
    """Two clusters stretched along different axes: around each, the local PC1 is its own axis."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(500, 3)) * [2.0, 0.1, 0.1]
    b = rng.normal(size=(500, 3)) * [0.1, 2.0, 0.1] + [40.0, 0, 0]
    pool = np.concatenate([a, b])
    assert _cos(D.local_directions(pool, [0, 0, 0], 1, neighbours=200).vectors[0], [1, 0, 0]) > 0.99
    near_b = D.local_directions(pool, [40, 0, 0], 1, neighbours=200)
    assert _cos(near_b.vectors[0], [0, 1, 0]) > 0.99 and near_b.method == "local"


def test_arithmetic_is_exact_on_hand_made_vectors() -> None:
    a, b, c = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]), np.array([-1.0, 0.0, 4.0])
    np.testing.assert_array_equal(arithmetic(a, b, c), np.array([-0.5, 1.5, 6.5], np.float32))
    np.testing.assert_array_equal(arithmetic(a, a, c), c.astype(np.float32))
    with pytest.raises(ConfigError, match="one width"):
        arithmetic(a, b, np.zeros(4))


def test_a_direction_set_round_trips_and_moves_z(tmp_path: Path) -> None:
    s = DirectionSet(np.array([[3.0, 4.0], [0.0, 2.0]]), [2.0, 0.5], ["PC1", "PC2"], [0.8, np.nan],
                     method="pca", source="posterior means", model="vae", step=12)
    np.testing.assert_allclose(s.vectors, [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(s.move([1.0, 1.0], [1.0, -2.0]), [1.0 + 1.2, 1.0 + 1.6 - 1.0], rtol=1e-6)
    back = DirectionSet.read(s.write(tmp_path / "directions.json"))
    np.testing.assert_array_equal(back.vectors, s.vectors)
    assert back.names == s.names and back.step == 12 and back.model == "vae"
    assert back.explained[0] == pytest.approx(0.8) and np.isnan(back.explained[1])


@pytest.mark.parametrize("tamper, message", [
    (lambda d: d.update(latent_studio_directions=2), "not a direction set"),
    (lambda d: d.update(latent_dim=10**9), "latent_dim"),
    (lambda d: d["directions"][0].update(vector=[1.0]), "list of 2 numbers"),
    (lambda d: d["directions"][0].update(vector=["a", 1]), "list of 2 numbers"),
    (lambda d: d["directions"][0].update(scale=-1.0), "scales > 0"),
    (lambda d: d["directions"][0].update(vector=[0.0, 0.0]), "zero length"),
    (lambda d: d.update(directions=[]), "1 to"),
    (lambda d: d.update(step=-3), "step"),
])
def test_a_tampered_direction_set_is_refused_by_name(tmp_path: Path, tamper, message: str) -> None:
    d = DirectionSet(np.eye(2), [1.0, 1.0], ["a", "b"]).to_json()
    tamper(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=message) as e:
        DirectionSet.read(path)
    assert "bad.json" in str(e.value)


def test_an_unreadable_direction_file_is_one_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="deep.json"):
        DirectionSet.read(deep)
    (tmp_path / "junk.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(ConfigError, match="junk.json"):
        DirectionSet.read(tmp_path / "junk.json")


def test_map_geometry_nearest_place_unplace_lasso_and_paths() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(size=(50, 4))
    xy = rng.normal(size=(50, 2))
    idx, d = M.nearest(z[7] + 1e-3, z, 3)
    assert idx[0] == 7 and d[0] < 1e-2 and (np.diff(d) >= 0).all()
    np.testing.assert_allclose(M.place(z, xy, z[[3, 9]]), xy[[3, 9]], atol=1e-6)  # a map latent lands on its point
    np.testing.assert_allclose(M.unplace(xy, z, xy[12]), z[12][None], atol=1e-6)  # a click on a point is its z
    between = M.unplace(xy, z, (xy[0] + xy[1]) / 2, k=2)[0]
    assert np.linalg.norm(between - (z[0] + z[1]) / 2) < np.linalg.norm(z[0] - z[1])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(M.inside(square, [[0.5, 0.5], [1.5, 0.5], [0.2, 0.9], [-0.1, 0.2]]),
                                  [True, False, True, False])
    path = M.resample_path([[0, 0], [3, 0], [3, 4]], 8)
    np.testing.assert_allclose(path[[0, -1]], [[0, 0], [3, 4]])
    np.testing.assert_allclose(np.linalg.norm(np.diff(path, axis=0), axis=1), 1.0)  # 7 steps of length 1


def test_maps_by_pca_and_by_tsne_and_a_cancelled_tsne_returns_at_once() -> None:
    rng = np.random.default_rng(6)
    z = np.concatenate([rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 10.0])
    xy = D.map_2d(z, "pca")
    assert xy.shape == (120, 2) and abs(xy[:60, 0].mean() - xy[60:, 0].mean()) > 20
    seen: list[float] = []
    t = D.map_2d(z, "tsne", perplexity=20, progress=lambda f, _w: seen.append(f))
    centres = [t[:60].mean(0), t[60:].mean(0)]
    spread = max(t[:60].std(0).max(), t[60:].std(0).max())
    assert np.linalg.norm(centres[0] - centres[1]) > 2 * spread  # the two clusters stay apart
    assert all(0 <= f < 1 for f in seen)
    again = D.map_2d(z, "tsne", perplexity=20, seed=1, init=t)  # from the last map: the clusters stay put
    assert np.sign(again[:60, 0].mean() - again[60:, 0].mean()) == np.sign(centres[0][0] - centres[1][0])
    with pytest.raises(DataError, match="start"):
        D.map_2d(z, "tsne", init=np.zeros((5, 2)))
    cancel = threading.Event()
    cancel.set()
    start = time.perf_counter()
    assert D.map_2d(rng.normal(size=(2000, 8)), "tsne", cancel=cancel) is None
    assert time.perf_counter() - start < 2.0
    with pytest.raises(ConfigError, match="pca' or 'tsne"):
        D.map_2d(z, "umap")


@pytest.mark.skipif(not DEMO.is_file(), reason="the demo checkpoints are built by assets/make_demos.py")
def test_on_shapes_pca_and_the_x_attribute_direction_align_with_the_x_latent(one_torch_thread) -> None:
    """The bundled beta-VAE on shapes: the z dimension with the most MI with x is the x latent."""
    from engines.metrics.coverage import load_run
    from engines.metrics.disentanglement import mutual_info_matrix
    from engines.shared import protocol as P
    from engines.worker.directions import find, gather

    class Job:
        cancel = threading.Event()

        def progress(self, *_a) -> None:
            pass

    engine, _, dataset = load_run(DEMO, "cpu")
    lat = gather(Job(), engine, dataset, 1000)
    factors = dataset.factor_values(np.asarray(dataset.test_indices)[lat.indices])
    names = list(dataset.info.factor_names)
    mi = mutual_info_matrix(lat.z, factors)
    x_axis = np.eye(engine.latent.dim)[int(np.argmax(mi[:, names.index("x")]))]
    attribute, _ = find(Job(), P.FindDirections(method="attribute", factor="x", n_examples=1000), engine, dataset)
    pca, n = find(Job(), P.FindDirections(method="pca", k=3, n_examples=1000), engine, dataset)
    cos_attr = _cos(attribute.vectors[0], x_axis)
    cos_pca = max(_cos(v, x_axis) for v in pca.vectors)
    print(f"cosine with the x latent: attribute {cos_attr:.3f}, best of 3 PCs {cos_pca:.3f}")
    assert n == 1000 and cos_attr > 0.8 and cos_pca > 0.8


@pytest.mark.skipif(not DEMO.is_file(), reason="the demo checkpoints are built by assets/make_demos.py")
def test_directions_from_the_command_line_sweep_with_a_sidecar_that_re_renders(tmp_path: Path, capsys) -> None:
    import latent_studio

    out = tmp_path / "x.json"
    assert latent_studio.main(["directions", "--run", str(DEMO.parent), "--method", "attribute", "--factor", "x",
                               "--n", "400", "--json", str(out)]) == 0
    found = DirectionSet.read(out)
    assert found.names == ["x"] and found.model == "beta-vae" and "400 held-out" in found.source
    assert latent_studio.main(["directions", "--run", str(DEMO.parent), "--method", "pca", "--k", "3", "--n", "300",
                               "--json", str(tmp_path / "pca.json")]) == 0
    assert "1. PC1: scale" in capsys.readouterr().out
    gif = tmp_path / "x.gif"
    assert latent_studio.main(["traverse", "--run", str(DEMO.parent), "--direction", f"{out}:1", "--steps", "5",
                               "--out", str(gif)]) == 0
    side = json.loads((tmp_path / "x.gif.json").read_text())
    np.testing.assert_allclose(side["latents"]["directions"][0], found.vectors[0] * found.scales[0], rtol=1e-6)
    assert side["latents"]["names"] == ["x"]
    assert latent_studio.main(["render", str(tmp_path / "x.gif.json"), "--out", str(tmp_path / "again.gif")]) == 0
    assert (tmp_path / "again.gif").read_bytes() == gif.read_bytes()
    assert latent_studio.main(["traverse", "--run", str(DEMO.parent), "--direction", f"{out}:2",
                               "--out", str(tmp_path / "bad.png")]) == 2
    assert "direction 2 asked for; the set holds 1 to 1" in capsys.readouterr().err
