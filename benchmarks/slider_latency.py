"""Slider latency: from a latent slider's value change to the new decoded image painted, in ms.

The real window (offscreen) drives the real worker process: `shapes` at 64 px, `beta-vae` with 10
latent dimensions. Each sample moves one Explore slider (as a drag does: the slider's valueChanged
goes through the window's own wiring to a Decode command), waits for the Decoded event, lets the
window put it on the image item, then paints the decoded view synchronously (`repaint()`), and
stops the clock when that paint returns. Moves are spaced ~16 ms apart (a 60 Hz drag), each one
after the previous image was painted, so this is latency, not throughput. Measured idle (the model
built, not training) and while training runs in the worker.

    python benchmarks/slider_latency.py [--n 300] [--data shapes] [--latent-dim 10]

Prints p50, p90 and p99 in ms for both conditions (goal: p50 <= 8 ms, p99 <= 16.7 ms idle;
p99 <= 16.7 ms and max <= 33 ms while training), then, from the timestamps the messages carry
(``Decoded.timings`` and the client's ``decode_timings``, one monotonic clock for both processes),
where the time went, stage by stage: the window sending, the pipe to the worker, the host thread's
queue, the weight snapshot's lock, the decode, the way back, the window's event queue, the paint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="slider moves per condition")
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--model", default="beta-vae")
    ap.add_argument("--latent-dim", type=int, default=10)
    ap.add_argument("--gap-ms", type=float, default=16.0)
    ap.add_argument("--no-live-metrics", action="store_true",
                    help="turn off the worker's live coverage and disentanglement measurements")
    args = ap.parse_args()

    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engines.shared import protocol
    from studio.shell.window import MainWindow

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major")
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    win.start_worker()

    wake = QTimer()
    wake.start(50)  # bounds each blocking wait below, so timeouts are checked

    def spin(until, timeout: float, what: str) -> None:  # noqa: ANN001
        """Run the event loop (blocking while idle, as a real window does) until ``until()``."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what() if callable(what) else what}")
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)

    spin(lambda: win.client.state == "idle", 180, "the worker")
    win.configure(data=args.data, model=args.model, latent_dim=args.latent_dim, image_size=None)
    spin(lambda: win.client.state == "ready", 300, "the model")
    if args.no_live_metrics:
        win.client.send(protocol.SetMetricSchedule(coverage_every=0, disentanglement_every=0))
    client, view = win.client, win.decoded_view.output
    painted: dict[int, float] = {}
    painted_mono: dict[int, float] = {}
    moved_mono: dict[int, float] = {}

    def on_decoded(event) -> None:  # noqa: ANN001 - connected after the window's own slot
        if event.view != "explore":
            return
        view.graphics.viewport().repaint()  # paint now; returns when the pixels are drawn
        painted[event.request_id] = time.perf_counter()
        painted_mono[event.request_id] = time.monotonic()

    def first_painted(rid: int) -> float | None:
        """When the first image answering request ``rid`` or a newer one was painted (the client
        condenses requests: a newer one, e.g. from a KL reorder, can replace ``rid`` unsent)."""
        times = [t for r, t in painted.items() if r >= rid]
        return min(times) if times else None

    client.decoded.connect(on_decoded)
    rng = np.random.default_rng(0)

    def measure(n: int) -> tuple[np.ndarray, list[int]]:
        out, rids = [], []
        for i in range(n):
            k = i % args.latent_dim
            t0, m0 = time.perf_counter(), time.monotonic()
            win.explore_panel.set_value(k, float(rng.uniform(-2.5, 2.5)))
            rid = client.last_requested("explore")
            moved_mono[rid] = m0
            rids.append(rid)
            spin(lambda: first_painted(rid) is not None, 10, lambda: f"decoded image {rid} (client: "
                 f"{client.decode_stats}, in flight {client._inflight}, pending {list(client._pending)})")
            out.append((first_painted(rid) - t0) * 1e3)
            time.sleep(args.gap_ms / 1e3)
            app.processEvents()
        return np.asarray(out), rids

    measure(20)  # warm-up
    idle, idle_rids = measure(args.n)
    win.train(None)
    spin(lambda: client.state == "training" and client.step > 5, 120, "training to start")
    busy, busy_rids = measure(args.n)
    steps_during = client.step
    client.send(protocol.Stop())
    win.close()
    app.processEvents()

    print(f"{args.data}, {args.model}, latent {args.latent_dim}; {args.n} moves each; trained to step {steps_during}",
          file=sys.stderr)
    print("| condition | p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, lat in (("idle", idle), ("training", busy)):
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {lat.max():.1f} |")
    print()
    print("| stage (ms) | idle p50 | idle p99 | training p50 | training p99 | training max |")
    print("| --- | --- | --- | --- | --- | --- |")
    columns = [_stages(client.decode_timings, moved_mono, painted_mono, rids) for rids in (idle_rids, busy_rids)]
    for stage in STAGES:
        a, b = columns[0].get(stage, []), columns[1].get(stage, [])
        if len(a) and len(b):
            print(f"| {stage} | {np.percentile(a, 50):.2f} | {np.percentile(a, 99):.2f} | {np.percentile(b, 50):.2f} "
                  f"| {np.percentile(b, 99):.2f} | {np.max(b):.2f} |")
    return 0


#: (name, from, to): the stages of one decode, between the timestamps the client and worker keep.
STAGES_FROM_TO = (
    ("window: slider to Decode sent", "moved", "sent"),
    ("pipe to the worker", "sent", "received"),
    ("worker: host thread's queue", "received", "started"),
    ("worker: snapshot lock", "started", "locked"),
    ("worker: decode", "locked", "decoded"),
    ("back: worker to the window's reader", "decoded", "arrived"),
    ("window: event queue to the GUI thread", "arrived", "delivered"),
    ("window: image set and painted", "delivered", "painted"),
)
STAGES = [name for name, _, _ in STAGES_FROM_TO]


def _stages(timings: dict, moved: dict, painted: dict, rids: list[int]) -> dict[str, list[float]]:
    """Milliseconds of each stage over the requests ``rids`` that were answered themselves."""
    import numpy as np

    out: dict[str, list[float]] = {name: [] for name in STAGES}
    for rid in rids:
        t = dict(timings.get(rid, {}))
        if not t or rid not in painted:
            continue
        t["moved"], t["painted"] = moved.get(rid), painted[rid]
        for name, a, b in STAGES_FROM_TO:
            if t.get(a) is not None and t.get(b) is not None:
                out[name].append((t[b] - t[a]) * 1e3)
    return {k: np.asarray(v) for k, v in out.items()}


if __name__ == "__main__":
    sys.exit(main())
