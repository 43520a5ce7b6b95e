"""``editbench experiment``: studies that are not edit tasks (activation reporting, seed 004)."""

from __future__ import annotations

import argparse
import time


def activations(args: argparse.Namespace) -> int:
    import dataclasses

    from editbench.experiments.activations import GRIDS, run_grid, summary_rows

    t0 = time.perf_counter()
    grid = dataclasses.replace(GRIDS["quick" if args.quick else "default"], control=args.control_lm)
    records = run_grid(args.out, grid, lm_path=args.lm)
    for r in summary_rows(records):
        extra = (f" drift {r['drift']:.3f} causal {r['causal_shift']:+.2f}" if r["reporter"] == "self"
                 else " (another model reports)")
        print(f"{r['layer']:<26} neuron {r['neuron']:<4} {r['mode']:<5} n={r['n_train']:<5} accuracy {r['accuracy']:.3f} "
              f"mae {r['mae']:.2f} probe {r['probe_ceiling']:.3f}{extra}")
    print(f"{len(records)} points in {time.perf_counter() - t0:.0f} s; tables and plot in {args.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("experiment", help="studies that are not edit tasks")
    s = p.add_subparsers(dest="experiment", required=True, parser_class=type(p))
    a = s.add_parser("activations", help="can the lamp LM be finetuned to report one of its own neurons?")
    a.add_argument("--out", required=True, help="folder for the points (resumable), tables and plot")
    a.add_argument("--quick", action="store_true", help="two layers, one neuron each, one training size (CI)")
    a.add_argument("--lm", default=None, help="lamp LM folder (default: the shipped one)")
    a.add_argument("--control-lm", default=None, help="a second LM (another seed) that also learns to report the "
                   "first one's neurons: the cross-model control")
    a.set_defaults(func=activations)
