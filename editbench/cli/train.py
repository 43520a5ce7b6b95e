"""``editbench train generator|meter``: train a reference model from one command with a fixed seed."""

from __future__ import annotations

import argparse

from .common import Parser, positive_int, seed


def _bf16(args: argparse.Namespace) -> bool:
    if args.bf16 == "auto":
        import torch

        from editbench.tracks.image.train import pick_device

        return pick_device(args.device).type == "cuda" and torch.cuda.is_bf16_supported()
    return args.bf16 == "on"


def generator(args: argparse.Namespace) -> int:
    from editbench.tracks.image.train import train_generator

    out = train_generator(
        args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device,
        bf16=_bf16(args), ckpt_every=args.ckpt_every, sample_every=args.sample_every, resume=args.resume,
        g_lr=args.g_lr, d_lr=args.d_lr, ema_decay=args.ema_decay, marginal_weight=args.marginal_weight,
        init_from=args.init_from,
    )
    print(f"generator saved in {out / 'generator'}")
    return 0


def meter(args: argparse.Namespace) -> int:
    from editbench.tracks.image.train import train_meter

    out = train_meter(args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device,
                      bf16=_bf16(args), ckpt_every=args.ckpt_every, resume=args.resume)
    print(f"meter saved in {out / 'meter'}")
    return 0


def judge(args: argparse.Namespace) -> int:
    """The judge: a meter of its own architecture, slots and degradations (see its model card)."""
    from editbench.tracks.image.meter import JUDGE_CONFIG, JUDGE_TRAINING
    from editbench.tracks.image.train import train_meter

    out = train_meter(args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, device=args.device,
                      bf16=_bf16(args), ckpt_every=args.ckpt_every, resume=args.resume, lr=args.lr,
                      meter_config=dict(JUDGE_CONFIG), **JUDGE_TRAINING)
    print(f"judge saved in {out / 'meter'}")
    return 0


def lm(args: argparse.Namespace) -> int:
    from editbench.tracks.text.train import train_lm

    out = train_lm(args.out, steps=args.steps, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                   n_layer=args.layers, n_embd=args.width, n_head=args.heads, device=args.device,
                   ckpt_every=args.ckpt_every, resume=args.resume)
    print(f"lamp LM saved in {out / 'lm'}")
    return 0


def register(sub) -> None:
    train = sub.add_parser("train", help="train a reference model")
    tsub = train.add_subparsers(dest="train_command", required=True, parser_class=Parser)
    for name, func, steps, batch in (("generator", generator, 60_000, 64), ("meter", meter, 12_000, 128),
                                     ("judge", judge, 3_000, 32)):
        p = tsub.add_parser(name, help=f"train the {name}")
        p.add_argument("--out", required=True, help="run folder (checkpoints, log, samples)")
        p.add_argument("--steps", type=positive_int, default=steps)
        p.add_argument("--seed", type=seed, default=0)
        p.add_argument("--batch-size", type=positive_int, default=batch)
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
        p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                       help="bf16 autocast (auto: on for CUDA only; CPUs without bf16 units are far slower)")
        p.add_argument("--ckpt-every", type=positive_int, default=1000)
        if name == "judge":
            p.set_defaults(seed=7)
            p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle)")
        if name == "generator":
            p.add_argument("--sample-every", type=positive_int, default=2000)
            p.add_argument("--g-lr", type=float, default=2e-4)
            p.add_argument("--d-lr", type=float, default=4e-4)
            p.add_argument("--ema-decay", type=float, default=0.999)
            p.add_argument("--marginal-weight", type=float, default=0.0,
                           help="weight of the loss that matches the batch's lamp-count and lit-count histograms to the world's")
            p.add_argument("--init-from", default=None,
                           help="continue from this generator folder (its discriminator beside it), e.g. the shipped one")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        p.set_defaults(func=func)
    p = tsub.add_parser("lm", help="train the lamp LM (text track): caption -> description")
    p.add_argument("--out", required=True, help="run folder (lm/, state/, log.jsonl, run.json)")
    p.add_argument("--steps", type=positive_int, default=9000)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--layers", type=positive_int, default=4)
    p.add_argument("--width", type=positive_int, default=128, help="n_embd")
    p.add_argument("--heads", type=positive_int, default=4)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--ckpt-every", type=positive_int, default=500)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=lm)
