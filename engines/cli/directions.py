"""The ``directions`` sub-command: directions in a trained run's z, written as a direction set (JSON).

``latent-studio directions --run DIR --method pca|ica|attribute [--factor NAME] [--k K] --json FILE``
finds them as the Directions tab does (:mod:`engines.worker.directions`) and writes them with
:class:`engines.shared.directions.DirectionSet`; ``latent-studio traverse --direction FILE:K`` sweeps one.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path


def add_directions_command(sub: argparse._SubParsersAction) -> None:
    """Register ``directions`` on the ``latent-studio`` sub-parsers."""
    p = sub.add_parser(
        "directions",
        help="find directions in a run's z (PCA, ICA, attribute) and write them to a JSON direction set",
        description="Principal or independent components of the latents (posterior means of held-out images; "
        "for a model without an encoder, prior draws through the generator's first layer, as GANSpace does), or "
        "the direction of a ground-truth factor or class (--factor). Writes unit vectors in z with their scale "
        "and explained variance; sweep one with `latent-studio traverse --direction FILE:K`.",
    )
    p.add_argument("--run", required=True, type=Path, help="run folder (or .safetensors checkpoint)")
    p.add_argument("--method", required=True, choices=["pca", "ica", "attribute"])
    p.add_argument("--factor", default="", help="attribute: a factor's name, or 'class' (with --to-class)")
    p.add_argument("--to-class", type=int, default=0, help="attribute with --factor class: the class index")
    p.add_argument("--estimator", choices=["mean", "linear"], default="mean",
                   help="attribute: mean difference (default) or a linear model's normal")
    p.add_argument("--k", type=int, default=6, help="pca / ica: directions (default %(default)s)")
    p.add_argument("--n", type=int, default=1000, help="held-out images encoded or prior draws (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="which images, or which draws (default %(default)s)")
    p.add_argument("--json", required=True, type=Path, help="the direction set to write")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="force a device (default: cuda, then mps, then cpu)")
    p.set_defaults(func=cmd_directions)


class _Bar:
    """What :func:`engines.worker.directions.find` reports to: a tqdm bar on stderr."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.cancel = threading.Event()
        self.bar = tqdm(file=sys.stderr, disable=None, leave=False, unit="image")

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.bar.total = total
        self.bar.set_description(message)
        self.bar.update(done - self.bar.n)


def cmd_directions(args: argparse.Namespace) -> int:
    """Find and write the directions; see the sub-command's help."""
    from engines.lib.training import configure_threads, pick_device
    from engines.metrics.coverage import load_run
    from engines.shared import protocol as P
    from engines.shared.errors import ConfigError
    from engines.worker.directions import find

    if args.method == "attribute" and not args.factor:
        raise ConfigError("--method attribute needs --factor NAME (a ground-truth factor, or 'class')")
    device = pick_device(args.device)
    configure_threads(device)
    engine, manifest, dataset = load_run(args.run, str(device))
    engine.eval()
    bar = _Bar()
    try:
        found, n = find(bar, P.FindDirections(method=args.method, k=args.k, n_examples=args.n, factor=args.factor,
                                              to_class=args.to_class, estimator=args.estimator, seed=args.seed),
                        engine, dataset)
    finally:
        bar.bar.close()
    found.model, found.step = engine.name, int(manifest.get("step", 0))
    found.write(args.json)
    for i, (name, scale, share) in enumerate(zip(found.names, found.scales, found.explained)):
        extra = "" if share != share else f", {100 * share:.1f}% of variance"
        print(f"{i + 1}. {name}: scale {scale:.3f}{extra}")
    print(f"from {found.source}; wrote {args.json}", file=sys.stderr)
    return 0
