"""The wire codec of engines.shared.protocol: every message round-trips, and malformed frames are refused."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import struct

import numpy as np
import pytest

from engines.shared import protocol as P
from engines.shared.datainfo import DataInfo
from engines.shared.errors import ProtocolError
from engines.shared.registry import MODELS
from engines.shared.results import ClassCoverage, DisentanglementScores, MixtureCoverage
from engines.shared.spec import HyperParam, LatentSpec

RNG = np.random.default_rng(0)


def _images(n: int = 3, c: int = 1, s: int = 4) -> np.ndarray:
    return RNG.random((n, c, s, s), dtype=np.float32)


#: One fully populated example of every message type (non-default values in every field).
EXAMPLES: list[P.Message] = [
    P.Configure(data="digits", model="vae", image_size=16, latent_dim=4, seed=7, batch_size=32,
                options={"arch": "mlp", "beta": 4.0, "lr": 1e-3, "nested": {"a": [1, 2, None]}}),
    P.Train(steps=12),
    P.Train(steps=None),
    P.Pause(),
    P.Resume(),
    P.Stop(),
    P.SetHyperparameter(name="beta", value=2.5),
    P.Decode(request_id=41, view="interpolate", z=RNG.standard_normal((5, 10)).astype(np.float32)),
    P.Encode(request_id=3, view="morph", images=_images(), indices=None, split="train"),
    P.Encode(request_id=4, view="explore", images=None, indices=[0, 5, 9], split="test"),
    P.Sample(request_id=8, n=16, seed=99),
    P.DrawPixels(request_id=10, n=3, seed=4, image=np.zeros((1, 1, 4, 4), np.float32),
                 known=np.eye(4, dtype=bool), frames=8, delay_ms=30.0),
    P.PixelFrame(request_id=10, step=5, images=np.ones((3, 1, 4, 4), np.float32), drawn=np.eye(4, dtype=bool),
                 done=4, total=12, final=False),
    P.PixelSurprise(request_id=11, index=3),
    P.Score(request_id=12, images=np.zeros((2, 1, 4, 4), np.float32)),
    P.Score(request_id=13, indices=[4, 5], split="train"),
    P.Scored(request_id=12, step=5, nats=np.array([-3.0, -4.0], np.float32),
             bits_per_dim=np.array([0.27, np.nan], np.float32), kind="exact", space="8-bit"),
    P.FindDirections(request_id=14, method="class", k=1, n_examples=100, from_class=2, to_class=7),
    P.DirectionsFound(request_id=14, step=5, directions=np.eye(3, 16, dtype=np.float32),
                      scales=np.ones(3, np.float32), explained=np.array([0.2, 0.1, np.nan], np.float32),
                      names=["PC1 (20.0% of variance)", "PC2", "PC3"], n=100, method="pca", source="posterior means"),
    P.FindDirections(request_id=15, method="groups", group_a=[1, 2], group_b=[3], estimator="linear", seed=4,
                     factor="x", point=np.ones(16, np.float32)),
    P.MapLatents(request_id=16, method="tsne", n=300, perplexity=12.5, seed=3),
    P.LatentMapped(request_id=16, step=5, method="tsne", xy=np.ones((3, 2), np.float32),
                   z=np.zeros((3, 4), np.float32), images=np.zeros((3, 1, 4, 4), np.uint8),
                   indices=np.arange(3, dtype=np.int64), labels=np.array([0, 1, -1], np.int64),
                   factors=np.ones((3, 2), np.float32), factor_names=["x", "y"], class_names=["a", "b"],
                   source="posterior means of 3 held-out images"),
    P.FindNearest(request_id=17, z=np.ones(4, np.float32), k=3),
    P.NearestFound(request_id=17, step=5, image=_images(1), pixel_images=_images(3),
                   pixel_indices=np.arange(3, dtype=np.int64), pixel_distances=np.ones(3, np.float32),
                   latent_images=_images(3), latent_indices=np.arange(3, dtype=np.int64),
                   latent_distances=np.ones(3, np.float32), n=90),
    P.PixelSurprised(request_id=11, step=5, image=np.ones((1, 1, 4, 4), np.float32),
                     log_probs=np.full((1, 4, 4), -0.5, np.float32), nats=-8.0, bits_per_dim=0.72),
    P.GetExamples(request_id=9, indices=[1, 2, 3], split="train"),
    P.SaveCheckpoint(path="/tmp/run/model.safetensors"),
    P.LoadCheckpoint(path="/tmp/run"),
    P.Shutdown(),
    P.Started(pid=1234, device="cuda:0", threads=7, torch_version="2.13.0", models=["vae", "beta-vae"]),
    P.Ready(device="mps", model="beta-vae", family="vae",
            data=DataInfo("digits", "image", (1, 8, 8), 1797, 1617, 180, class_names=tuple("0123456789")),
            data_summary="digits: 1797 x 1x8x8", latent=LatentSpec.gaussian(1),
            hyper=[HyperParam("beta", 4.0, 0.0, 100.0), HyperParam("lr", 1e-3, 1e-6, 1e-1, log=True)],
            capabilities=MODELS["beta-vae"].capabilities,
            config={"latent_dim": 1, "seed": 0}, step=250, checkpoint="/tmp/x.safetensors"),
    P.TrainingState(state="paused", step=17),
    P.StepMetrics(steps=np.arange(100, 104, dtype=np.int64), names=["recon", "kl", "kl/z0"],
                  values=np.array([[1.0, 2.0, np.nan]] * 4, dtype=np.float32), steps_per_sec=123.5,
                  images_per_sec=7904.0, latent_kl=np.array([0.5, 0.0, 3.25], dtype=np.float32)),
    P.StepMetrics(steps=np.zeros(0, np.int64), names=[], values=np.zeros((0, 0), np.float32), latent_kl=None),
    P.StepMetrics(steps=np.arange(5, 7, dtype=np.int64), names=["recon"], values=np.ones((2, 1), np.float32),
                  unit_effect=np.array([12.5, 0.0, 3.25, 0.125], dtype=np.float32)),
    P.Samples(request_id=-1, step=300, images=_images(64, 3, 8)),
    P.Samples(request_id=2, step=0, images=RNG.standard_normal((50, 2)).astype(np.float32)),
    P.Decoded(request_id=41, view="explore", step=12, images=_images(1, 1, 64)),
    P.Encoded(request_id=3, view="morph", z=RNG.standard_normal((3, 10)).astype(np.float32), images=_images()),
    P.Examples(request_id=9, indices=[1, 2, 3], images=_images(), labels=np.array([4, 0, 9], dtype=np.int64)),
    P.Examples(request_id=10, indices=[0], images=_images(1), labels=None),
    P.HyperparameterChanged(name="lr", value=3e-4, step=88),
    P.CheckpointSaved(path="/home/u/.latent-studio/autosave/model.safetensors", step=5000, autosave=True),
    P.Progress(task="data", done=3, total=10, message="Loading \u00e9l\u00e8ves \u2713"),
    P.Error(message="digits: no such data set", traceback="Traceback ...\n  line 1", command="Configure"),
    P.Warned(category="ConvergenceWarning", message="lbfgs failed to converge", where="_logistic.py:469"),
    P.Stopped(step=3, reason="finished"),
    P.SetMetricSchedule(coverage_every=2.5, disentanglement_every=0.0),
    P.SetWatchdog(enabled=True, auto_resume=True, spike_factor=100.0),
    P.SetTimeline(every=100, max_mb=64),
    P.RunChains(request_id=4, n=2, sweeps=3, frames=5, delay_ms=0.0, seed=1, image=np.zeros((1, 1, 4, 4), np.float32),
                known=np.ones((4, 4), bool)),
    P.ChainFrame(request_id=4, step=7, sweep=15, images=np.zeros((2, 1, 4, 4), np.float32), final=True),
    P.GetFilters(request_id=5, layer=1),
    P.Filters(request_id=5, step=7, images=np.full((3, 1, 4, 4), 0.5, np.float32), layer=1, layers=2),
    P.InspectHidden(request_id=8, image=np.zeros((1, 1, 4, 4), np.float32)),
    P.HiddenInspected(request_id=8, step=7, probs=np.full(5, 0.5, np.float32), sizes=np.array([3, 2]),
                      recon=np.zeros((1, 1, 4, 4), np.float32)),
    P.GetCodebook(request_id=9),
    P.Codebook(request_id=9, step=7, usage=np.full(4, 0.25, np.float32), dead=np.zeros(4, bool), perplexity=4.0,
               images=180),
    P.EstimateLogZ(request_id=6, runs=10, betas=100, seed=2),
    P.LogZEstimated(request_id=6, step=7, log_z=12.5, stderr=0.1, exact=12.4, runs=10, betas=100, seconds=0.2),
    P.TimelineChanged(steps=np.array([100, 200], np.int64), nbytes=2048, max_bytes=2**26, every=100, folder="/r/t"),
    P.ScrubTimeline(request_id=9, step=100, z=np.zeros(4, np.float32)),
    P.TimelineFrame(request_id=9, step=100, grid=np.zeros((2, 1, 4, 4), np.float32),
                    image=np.zeros((1, 4, 4), np.float32)),
    P.WatchdogTripped(step=41, cause="spike", message="the loss term 'nll' jumped", rolled_back_to=40,
                      suggestions=[["halve lr (0.1 -> 0.05)", "lr", 0.05], ["advice only", "", 0.0]], auto=False),
    P.Traverse(request_id=5, z=RNG.standard_normal((1, 4)).astype(np.float32), index=None, dims=[2, 0], steps=7,
               low=-2.0, high=2.0),
    P.Traverse(request_id=6, z=None, index=3, dims=None),
    P.Interpolate(request_id=11, keyframes=RNG.standard_normal((3, 4)).astype(np.float32), frames=24, method="spline",
                  constant_speed=True),
    P.Interpolated(request_id=11, step=7, z=RNG.standard_normal((24, 4)).astype(np.float32),
                   images=_images(24, 1, 8)),
    P.Traversed(request_id=5, step=100, dims=[2, 0], values=np.linspace(-2, 2, 7).astype(np.float32),
                z=RNG.standard_normal((1, 4)).astype(np.float32), images=RNG.random((2, 7, 1, 8, 8), dtype=np.float32)),
    P.CoverageMeasured(step=40, metric="mixture", ms=12.5, critic_units="probability",
                       result=MixtureCoverage(n=25, modes_total=8, modes_captured=7, high_quality_share=0.5,
                                              reverse_kl=None, per_mode_counts=(1,) * 7 + (0,)),
                       samples=RNG.standard_normal((25, 2)).astype(np.float32),
                       critic=RNG.standard_normal((16, 16)).astype(np.float32), extent=[-2.0, 2.0, -2.0, 2.0]),
    P.CoverageMeasured(step=41, metric="classes", result=ClassCoverage(
        metric="classes", n=2, classes_total=2, classes_covered=2, class_kl=0.0, confident_share=1.0,
        generated_hist=(0.5, 0.5), data_hist=(0.5, 0.5), classifier_accuracy=None)),
    P.DisentanglementMeasured(step=90, scores=DisentanglementScores(mig=0.25, dci_disentanglement=0.4),
                              mi_matrix=RNG.random((10, 5)).astype(np.float32),
                              factor_names=["shape", "scale", "orientation", "x", "y"], seconds=1.5),
    P.Encode(request_id=12, view="interpolate", images=_images(1), project_steps=50),
    P.Progress(task="export", done=4, total=60, message="cancelled", request_id=77),
    P.Export(request_id=77, kind="interpolation", out="/tmp/out/path.gif",
             latents={"keyframes": [[0.0, 1.5], [2.0, -1.0]], "method": "slerp", "frames": 24, "constant_speed": False},
             settings={"fps": 12, "size": 256, "resample": "nearest", "labels": False}),
    P.Exported(request_id=77, path="/tmp/out/path.gif", sidecar="/tmp/out/path.gif.json", frames=24, seconds=0.75),
    P.Cancel(request_id=77),
]


def _assert_same(a: P.Message, b: P.Message) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray):
            assert isinstance(vb, np.ndarray), f.name
            assert vb.dtype == va.dtype and vb.shape == va.shape, f.name
            np.testing.assert_array_equal(vb, va, err_msg=f.name)
            assert vb.flags.writeable and vb.flags.c_contiguous
        elif isinstance(va, float) and math.isnan(va):
            assert isinstance(vb, float) and math.isnan(vb), f.name
        else:
            assert vb == va and type(vb) is type(va), f.name


def test_examples_cover_every_message_type():
    covered = {type(m).__name__ for m in EXAMPLES}
    assert covered == set(P.message_types()), "add an example for each new message type"


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message):
    frame = P.encode(message)
    assert isinstance(frame, bytes) and frame[:4] == P.MAGIC
    _assert_same(message, P.decode(frame))
    # decode also accepts bytearray and memoryview (what recv_bytes_into would give)
    _assert_same(message, P.decode(bytearray(frame)))
    _assert_same(message, P.decode(memoryview(frame)))


def test_default_instances_round_trip():
    for cls in P.message_types().values():
        message = cls()
        _assert_same(message, P.decode(P.encode(message)))


@pytest.mark.parametrize(
    "dtype", ["bool", "uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float16", "float32", "float64"]
)
def test_array_dtypes_round_trip(dtype):
    a = (RNG.standard_normal((2, 3, 4)) * 50).astype(dtype)
    out = P.decode(P.encode(P.Decode(request_id=1, z=a)))
    assert out.z.dtype == np.dtype(dtype) and out.z.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.z, a)


def test_array_edge_cases_round_trip():
    big_endian = np.arange(6, dtype=">f4").reshape(2, 3)
    out = P.decode(P.encode(P.Decode(z=big_endian)))
    assert out.z.dtype == np.float32 and out.z.dtype.isnative
    np.testing.assert_array_equal(out.z, big_endian)

    strided = np.arange(24, dtype=np.float32).reshape(4, 6).T  # not C-contiguous
    out = P.decode(P.encode(P.Decode(z=strided)))
    np.testing.assert_array_equal(out.z, strided)

    scalar = np.array(2.5, dtype=np.float64)  # 0-d
    out = P.decode(P.encode(P.Decode(z=scalar)))
    assert out.z.shape == () and out.z == 2.5

    empty = np.zeros((0, 10), np.float32)
    out = P.decode(P.encode(P.Decode(z=empty)))
    assert out.z.shape == (0, 10)

    nan_inf = np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)
    out = P.decode(P.encode(P.Decode(z=nan_inf)))
    np.testing.assert_array_equal(out.z, nan_inf)


def test_several_arrays_keep_their_order_and_none_arrays_stay_none():
    m = P.Encoded(request_id=5, z=np.ones((2, 3), np.float64), images=None)
    out = P.decode(P.encode(m))
    assert out.images is None and out.z.dtype == np.float64
    m = P.Examples(images=np.full((1, 1, 2, 2), 0.25, np.float32), labels=np.array([7], np.int64))
    out = P.decode(P.encode(m))
    assert out.images.dtype == np.float32 and out.labels.dtype == np.int64 and out.labels[0] == 7


def test_nan_and_inf_floats_round_trip():
    out = P.decode(P.encode(P.StepMetrics(steps_per_sec=float("nan"), images_per_sec=float("inf"))))
    assert math.isnan(out.steps_per_sec) and out.images_per_sec == math.inf
    out = P.decode(P.encode(P.SetHyperparameter(name="beta", value=float("-inf"))))
    assert out.value == -math.inf


# -- refusals ------------------------------------------------------------------------------------


def _frame(header: dict, payload: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return P.MAGIC + struct.pack("<I", len(h)) + h + payload


def test_encode_refuses_object_arrays_and_non_json_fields():
    with pytest.raises(ProtocolError, match="dtype"):
        P.encode(P.Decode(z=np.array([object(), 1], dtype=object)))
    with pytest.raises(ProtocolError, match="dtype"):
        P.encode(P.Decode(z=np.array(["a", "b"])))
    with pytest.raises(ProtocolError, match="JSON"):
        P.encode(P.Configure(options={"f": object()}))
    with pytest.raises(ProtocolError):
        P.encode(object())  # type: ignore[arg-type]


def test_decode_refuses_pickle():
    for message in (P.Shutdown(), {"type": "Shutdown"}):
        with pytest.raises(ProtocolError, match="pickle"):
            P.decode(pickle.dumps(message))


def test_decode_refuses_bad_magic_and_short_frames():
    frame = P.encode(P.Train(steps=3))
    with pytest.raises(ProtocolError, match="magic"):
        P.decode(b"LSM2" + frame[4:])
    with pytest.raises(ProtocolError, match="magic"):
        P.decode(b"")
    with pytest.raises(ProtocolError, match="magic"):
        P.decode(frame[:6])


def test_decode_refuses_truncated_frames():
    frame = P.encode(P.Decode(request_id=1, z=np.ones((4, 10), np.float32)))
    with pytest.raises(ProtocolError, match="truncated"):
        P.decode(frame[:-1])  # array bytes cut
    with pytest.raises(ProtocolError, match="truncated"):
        P.decode(frame[:20])  # header cut
    for cut in range(8, len(frame) - 1, 37):  # no cut point decodes or raises anything else
        with pytest.raises(ProtocolError):
            P.decode(frame[:cut])


def test_decode_refuses_trailing_bytes():
    with pytest.raises(ProtocolError, match="trailing"):
        P.decode(P.encode(P.Stop()) + b"\x00")
    with pytest.raises(ProtocolError, match="trailing"):
        P.decode(P.encode(P.Decode(z=np.ones(3, np.float32))) + b"xyz")


def test_decode_refuses_unknown_types_and_fields():
    with pytest.raises(ProtocolError, match="unknown message type"):
        P.decode(_frame({"type": "RunShellCommand", "fields": {}, "arrays": []}))
    with pytest.raises(ProtocolError, match="unknown message type"):
        P.decode(_frame({"type": "Message", "fields": {}, "arrays": []}))
    with pytest.raises(ProtocolError, match="unknown fields"):
        P.decode(_frame({"type": "Train", "fields": {"steps": 3, "evil": 1}, "arrays": []}))
    with pytest.raises(ProtocolError, match="unknown fields"):
        P.decode(_frame({"type": "Stop", "fields": {}, "arrays": [{"field": "z", "dtype": "uint8", "shape": [1]}]},
                        b"\x01"))


def test_decode_refuses_object_and_unknown_dtypes():
    for dtype in ("object", "O", "|O", "<U3", "V8", "complex128", "datetime64[s]"):
        header = {"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": dtype, "shape": [1]}]}
        with pytest.raises(ProtocolError, match="dtype"):
            P.decode(_frame(header, b"\x00" * 16))


def test_decode_refuses_malformed_headers():
    bad = [
        b"LSM1" + struct.pack("<I", 5) + b"{oops",
        b"LSM1" + struct.pack("<I", 2) + b"\xff\xfe",
        _frame({"fields": {}, "arrays": []}),  # no type
        _frame({"type": "Stop", "arrays": []}),  # no fields
        _frame({"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": "float32", "shape": [-1]}]}),
        _frame({"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": "float32"}]}),
        _frame({"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": "float32", "shape": ["x"]}]}),
        _frame(["not", "a", "dict"]),  # type: ignore[arg-type]
    ]
    for frame in bad:
        with pytest.raises(ProtocolError):
            P.decode(frame)


def test_decode_refuses_hostile_shapes_and_nesting_with_a_protocol_error():
    """Issue 12's probe: a shape whose product wraps int64, 65 dimensions, a 200,000-deep header or field."""
    wraps = [2**32, 2**32, 16]  # 2^68 elements: np.prod in int64 wraps to 0, so 0 bytes "fit"
    deep = b"[" * 200_000 + b"]" * 200_000
    bad = [
        _frame({"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": "float32", "shape": wraps}]}),
        _frame({"type": "Decode", "fields": {}, "arrays": [{"field": "z", "dtype": "float32", "shape": [1] * 65}]}),
        b"LSM1" + struct.pack("<I", len(deep)) + deep,
    ]
    header = b'{"type": "Train", "fields": {"steps": ' + deep + b'}, "arrays": []}'  # deep in a field's value
    bad.append(P.MAGIC + struct.pack("<I", len(header)) + header)
    for frame in bad:
        with pytest.raises(ProtocolError):
            P.decode(frame)


def test_decode_refuses_oversized_frames(monkeypatch):
    frame = P.encode(P.Decode(z=np.ones(100, np.float32)))
    from engines.shared import codec

    monkeypatch.setattr(codec, "MAX_FRAME_BYTES", len(frame) - 1)  # the codec moved to engines.shared.codec
    with pytest.raises(ProtocolError, match="exceeds"):
        P.decode(frame)


def test_typed_values_arrive_typed():
    """Ready carries DataInfo, LatentSpec, HyperParam and Capabilities, rebuilt as those types (not dicts)."""
    ready = next(m for m in EXAMPLES if isinstance(m, P.Ready))
    back = P.decode(P.encode(ready))
    assert isinstance(back.data, DataInfo) and back.data == ready.data
    assert isinstance(back.latent, LatentSpec) and back.latent.names == ("z0",)
    assert all(isinstance(h, HyperParam) for h in back.hyper) and back.hyper[1].log
    assert back.capabilities == MODELS["beta-vae"].capabilities and back.capabilities.has_encoder


def test_decode_refuses_unknown_value_types():
    frame = P.encode(P.Ready(model="m"))
    hlen = struct.unpack("<I", frame[4:8])[0]
    header = json.loads(frame[8 : 8 + hlen])
    header["fields"]["capabilities"] = {"$value": "os.system", "json": "rm -rf /"}
    body = json.dumps(header).encode()
    with pytest.raises(ProtocolError, match="unknown value type"):
        P.decode(P.MAGIC + struct.pack("<I", len(body)) + body)
    header["fields"]["capabilities"] = {"$value": "Capabilities", "json": {"encoder": "telepathy"}}
    body = json.dumps(header).encode()
    with pytest.raises(ProtocolError, match="malformed Capabilities"):
        P.decode(P.MAGIC + struct.pack("<I", len(body)) + body)
