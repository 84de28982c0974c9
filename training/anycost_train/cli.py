"""`anycost-train`: datasets, the training stages, encoder, directions, report, and a throughput benchmark."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from anycost.cli.options import OneLineErrorParser
from anycost.core.errors import AnycostError

from .config import CREPS_PRESETS, PRESETS, TrainConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog="anycost-train", description=__doc__)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)

    m = sub.add_parser("make-dataset", help="write procedural faces (PNG) and labels.jsonl to a folder")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--resolution", type=int, default=128)
    m.add_argument("--seed", type=int, default=0)

    t = sub.add_parser("train", help="train a stage: renderer (warm start), multires (stage 1) or adach (stage 2)")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, samples, log, state)")
    t.add_argument("--preset", choices=list(PRESETS), help=", ".join(PRESETS))
    t.add_argument("--config", type=Path, help="TOML file with any TrainConfig field")
    t.add_argument("--resume", action="store_true", help="continue exactly from OUT/train-state.pt")
    _add_overrides(t)

    a = sub.add_parser("adapt", help="make any StyleGAN2 (a file, an NVIDIA pickle, a published name) an anycost "
                                     "generator without its dataset: sub-generators fitted to its own images")
    a.add_argument("--model", required=True, help="the model to adapt (anything --model takes)")
    a.add_argument("--out", type=Path, required=True, help="the adapted model (.safetensors), its consistency "
                                                          "measured in; the run's state goes to --run")
    a.add_argument("--run", type=Path, help="run folder (checkpoints, samples, log, state; default OUT.run)")
    a.add_argument("--config", type=Path, help="TOML file with any TrainConfig field")
    a.add_argument("--resume", action="store_true", help="continue exactly from the run folder")
    a.add_argument("--name", help="the adapted model's name (default: the original's, + '-anycost')")
    for f in ("device",):
        a.add_argument(f"--{f}", dest=f, help=f"override `{f}`")
    for f in ("batch", "iters", "seed", "log_every", "sample_every", "checkpoint_every", "n_res", "r1_every"):
        a.add_argument(f"--{f.replace('_', '-')}", dest=f, type=int, help=f"override `{f}`")
    for f in ("lr", "adv_weight", "anchor_weight", "consistency_weight", "ema_kimg"):
        a.add_argument(f"--{f.replace('_', '-')}", dest=f, type=float, help=f"override `{f}`")
    a.add_argument("--channel-mode", dest="channel_mode", choices=["uniform", "flexible", "mixed"])

    ar = sub.add_parser("adapt-report", help="sub-generator consistency before and after adaptation runs, the full "
                                             "generator's drift, images/s: a markdown table and JSON")
    ar.add_argument("--original", required=True, help="the model before adaptation")
    ar.add_argument("--run", action="append", default=[], metavar="LABEL=MODEL[@RUNDIR]",
                    help="an adapted (or stage-2) model, with its run folder for images/s (repeatable)")
    ar.add_argument("--samples", type=int, default=64)
    ar.add_argument("--out", type=Path, required=True, help="the markdown file; the JSON goes beside it")

    c = sub.add_parser("creps", help="train a CREPS generator (any-scale renders), optionally in an anycost "
                                     "model's W space (--teacher)")
    c.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, samples, log, state)")
    c.add_argument("--preset", choices=list(CREPS_PRESETS), help=", ".join(CREPS_PRESETS))
    c.add_argument("--config", type=Path, help="TOML file with any CrepsTrainConfig field")
    c.add_argument("--resume", action="store_true", help="continue exactly from OUT/creps-state.pt")
    for f in ("arch", "data", "teacher", "device"):
        c.add_argument(f"--{f}", dest=f, help=f"override `{f}`")
    for f in ("batch", "iters", "seed", "log_every", "sample_every", "checkpoint_every", "r1_every", "pl_every",
              "patch"):
        c.add_argument(f"--{f.replace('_', '-')}", dest=f, type=int, help=f"override `{f}`")
    for f in ("lr", "distill_weight", "adv_weight", "pl_weight", "r1_gamma", "ema_kimg", "mixing", "patch_prob",
              "encoded"):
        c.add_argument(f"--{f.replace('_', '-')}", dest=f, type=float, help=f"override `{f}`")
    c.add_argument("--resolutions", type=lambda v: tuple(int(x) for x in v.split(",")),
                   help="whole-image training sizes, e.g. 64,32")

    e = sub.add_parser("encoder", help="train an encoder for a model (the paper's consistency-aware objective)")
    e.add_argument("--model", type=Path, required=True, help="model file (our format)")
    e.add_argument("--out", type=Path, required=True, help="run folder; writes OUT/model.safetensors")
    e.add_argument("--steps", type=int, default=2000)
    e.add_argument("--batch", type=int, default=8, help="half real images, half generated")
    e.add_argument("--alpha", type=float, default=0.5, help="weight of the sub-generator term")
    e.add_argument("--data", default="procedural", help="'procedural', 'teacher' or a folder of images")
    e.add_argument("--teacher", default="", help="the generator whose samples data 'teacher' is "
                                                 "(gan-face-generate or a model file)")
    e.add_argument("--resume", action="store_true")
    e.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")

    dr = sub.add_parser("directions", help="edit directions into a model: fitted to measured attributes (age, "
                                           "gender, smile, mouth, eyes, head turn) and principal components")
    dr.add_argument("--model", type=Path, required=True)
    dr.add_argument("--out", type=Path, required=True, help="model file to write (may be the same path)")
    dr.add_argument("--samples", type=int, default=1500, help="generated samples measured to fit the sliders")
    dr.add_argument("--eval", type=int, default=48, help="faces each candidate slider is judged on: the teacher's "
                    "faces projected into the model when it has an encoder and a teacher, else samples")
    dr.add_argument("--judge-steps", type=int, default=100, help="optimization steps of those projections (0: the "
                    "encoder's guess; -1: judge on samples instead)")
    dr.add_argument("--sliders", type=lambda v: v.split(","), help="only these measured sliders (comma-separated; "
                                                                    "default all: age, gender, smile, mouth_open, "
                                                                    "eyes_open, head_turn)")
    dr.add_argument("--pc", action="append", default=[], metavar="NAME=PCk@A-B",
                    help="name principal component k, applied to W+ rows A..B-1 (named by looking at its strip)")
    dr.add_argument("--unnamed-pcs", type=int, default=8, help="how many of the unnamed components to keep as "
                                                                "sliders PC1.. (0: only the named ones)")
    dr.add_argument("--pc-strips", type=Path, help="also write each component's strip per row range here, "
                                                    "to name them by")

    rp = sub.add_parser("report", help="measure projection fidelity and direction disentanglement; write markdown")
    rp.add_argument("--model", type=Path, required=True)
    rp.add_argument("--out", type=Path, required=True, help="markdown file (e.g. docs/editing-report.md)")
    rp.add_argument("--images", type=int, default=6, help="held-out procedural faces to project")
    rp.add_argument("--steps", type=int, default=100, help="optimization steps after the encoder guess")

    rl = sub.add_parser("release", help="measure consistency figures into a model, record its lineage, store it "
                                        "in half precision for shipping")
    rl.add_argument("--model", type=Path, required=True)
    rl.add_argument("--out", type=Path, required=True, help="model file to write")
    rl.add_argument("--name", default="demo", help="the model's name in its metadata")
    rl.add_argument("--ablation", action="append", default=[], metavar="LABEL=MODEL",
                    help="a model trained without some technique, measured the same way (repeatable)")
    rl.add_argument("--full-precision", action="store_true", help="keep float32 tensors")

    rc = sub.add_parser("creps-release", help="the same for a CREPS model: agreement with the anycost model whose W "
                                              "space it shares and scale consistency into the file, half precision")
    rc.add_argument("--model", type=Path, required=True)
    rc.add_argument("--out", type=Path, required=True, help="model file to write")
    rc.add_argument("--name", default="creps-demo", help="the model's name in its metadata")
    rc.add_argument("--full-precision", action="store_true", help="keep float32 tensors")

    mc = sub.add_parser("model-card", help="a model's page: grid, slider strips, projections, consistency table")
    mc.add_argument("--model", type=Path, required=True)
    mc.add_argument("--out", type=Path, required=True, help="markdown file; figures go to a folder named like it")
    mc.add_argument("--projections", type=int, default=6, help="held-out faces (and the photo) shown projected")
    mc.add_argument("--slider-faces", type=int, default=32, help="projected faces the slider table is measured on "
                    "(12 moved the figures by more than the bars' margins)")
    mc.add_argument("--detect-samples", type=int, default=100, help="samples per configuration for face detection")

    cc = sub.add_parser("creps-card", help="a CREPS model's page: sizes, scale consistency, agreement with the "
                                           "anycost model whose W space it shares")
    cc.add_argument("--model", required=True, help="CREPS model file (or creps-demo)")
    cc.add_argument("--out", type=Path, required=True, help="markdown file; figures go to a folder named like it")
    cc.add_argument("--latents", type=int, default=16, help="random latents for the agreement figures")
    cc.add_argument("--faces", type=int, default=4, help="held-out faces to project and edit")
    cc.add_argument("--steps", type=int, default=50, help="projection steps per face")

    al = sub.add_parser("alignment", help="fit the face-crop rule to where the model's own samples have their "
                                          "faces (mediapipe landmarks) and write it into the model file")
    al.add_argument("--model", type=Path, required=True)
    al.add_argument("--samples", type=int, default=400, help="random samples the rule is fitted to")

    aa = sub.add_parser("alignment-accuracy", help="landmark error of the face alignment on procedural faces "
                                                   "placed at random scales, turns and positions (docs/faces.md)")
    aa.add_argument("--faces", type=int, default=200)
    aa.add_argument("--seed", type=int, default=0)
    aa.add_argument("--out", type=Path, default=Path("bench-results/alignment-accuracy.json"))

    b = sub.add_parser("bench", help="training throughput (images/s) of each stage on this machine")
    b.add_argument("--preset", choices=list(PRESETS), default="demo")
    b.add_argument("--iters", type=int, default=6, help="timed iterations per stage (after 2 warm-up)")
    b.add_argument("--out", type=Path, help="JSON file (default bench-results/train-<preset>.json)")
    return p


def _add_overrides(p) -> None:
    for f in ("stage", "arch", "data", "teacher", "init", "device"):
        p.add_argument(f"--{f}", dest=f, help=f"override `{f}`")
    for f in ("batch", "iters", "seed", "log_every", "sample_every", "checkpoint_every", "n_res", "r1_every"):
        p.add_argument(f"--{f.replace('_', '-')}", dest=f, type=int, help=f"override `{f}`")
    for f in ("lr", "adv_weight", "feature_weight", "mapping_lr_scale", "consistency_weight", "pl_weight", "ema_kimg",
              "anchor_weight"):
        p.add_argument(f"--{f.replace('_', '-')}", dest=f, type=float, help=f"override `{f}`")
    p.add_argument("--channel-mode", dest="channel_mode", choices=["uniform", "flexible", "mixed"])
    p.add_argument("--no-conditioned-d", dest="conditioned_d", action="store_const", const=False)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        commands = {"make-dataset": make_dataset_cmd, "train": train_cmd, "adapt": adapt_cmd,
                    "adapt-report": adapt_report_cmd, "creps": creps_cmd,
                    "bench": bench_cmd,
                    "encoder": encoder_cmd, "directions": directions_cmd, "report": report_cmd,
                    "release": release_cmd, "model-card": model_card_cmd, "creps-card": creps_card_cmd,
                    "creps-release": creps_release_cmd, "alignment": alignment_cmd,
                    "alignment-accuracy": alignment_accuracy_cmd}
        return commands[args.command](args)
    except (AnycostError, ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"anycost-train: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("anycost-train: interrupted (resume with --resume)\n")
        return 130


def make_dataset_cmd(args) -> int:
    from tqdm import tqdm

    from .data import make_dataset
    if args.n < 1 or args.resolution < 8:
        raise ValueError("--n must be >= 1 and --resolution >= 8")
    with tqdm(total=args.n, unit="img") as bar:
        path = make_dataset(args.out, args.n, args.resolution, args.seed, progress=lambda i: bar.update(1))
    print(f"wrote {args.n} faces and {path}")
    return 0


def train_cmd(args) -> int:
    from .trainer import Trainer
    keys = [f.name for f in TrainConfig.__dataclass_fields__.values()]
    return _train(args, Trainer, lambda overrides: load_config(args.preset, args.config, overrides), keys)


# stage "adapt"'s defaults beside TrainConfig's (docs/adapt.md measures them; anchor_weight 10 keeps the final)
ADAPT_DEFAULTS = {"batch": 8, "iters": 2000, "lr": 0.0005, "ema_kimg": 1.0, "channel_mode": "mixed",
                  "sample_every": 250, "checkpoint_every": 250, "log_every": 20, "mixing": 0.5}


def adapt_cmd(args) -> int:
    """Stage "adapt" on the model, then `release` of the result into --out."""
    import logging

    from anycost.formats.registry import open_model

    from . import dist
    from .release import release
    from .trainer import Trainer
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = args.run or args.out.with_suffix(".run")
    overrides = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if getattr(args, k, None) is not None}
    original = open_model(args.model)
    try:
        if args.resume:
            trainer = Trainer.resumed(run, overrides)
        else:
            from .config import merged_options
            values = merged_options({"adapt": ADAPT_DEFAULTS}, "adapt", args.config, overrides)
            values.update(stage="adapt", arch="custom", generator=original.generator.cfg.to_dict(), init=args.model)
            if values.get("adv_weight", 0) > 0:         # the discriminator's real images: the original's samples
                values.update(data="teacher", teacher=args.model)
            trainer = Trainer(load_config(None, None, values), run)
        latest = trainer.run()
    finally:
        dist.shutdown()
    if latest is None:                                  # another rank of a torchrun job
        return 0
    name = args.name or f"{original.name}-anycost"
    path = release(run / "latest.safetensors", args.out, name, half=False, shipped=False)   # a user's model
    print(f"model: {path}")
    return 0


def _labelled(items: list[str], option: str, form: str) -> dict[str, str]:
    """`LABEL=VALUE` arguments (a repeatable option) as a dict."""
    out = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or not label or not value:
            raise ValueError(f"{option} takes {form}, got {item!r}")
        out[label] = value
    return out


def adapt_report_cmd(args) -> int:
    from .adapt_report import markdown, measure
    runs = {}
    for label, rest in _labelled(args.run, "--run", "LABEL=MODEL[@RUNDIR]").items():
        model, _, run = rest.partition("@")
        runs[label] = (model, Path(run) if run else None)
    report = measure(args.original, runs, args.samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    args.out.write_text(markdown(report))
    print(markdown(report))
    return 0


def creps_cmd(args) -> int:
    import dataclasses

    from .config import CrepsTrainConfig, load_creps_config
    from .creps_training import CrepsTrainer
    keys = [f.name for f in dataclasses.fields(CrepsTrainConfig)]
    return _train(args, CrepsTrainer, lambda overrides: load_creps_config(args.preset, args.config, overrides), keys)


def _train(args, trainer_cls, make_config, keys: list[str]) -> int:
    """A new run from preset/TOML/overrides, or --resume of the run in --out; prints the model file."""
    import logging

    from . import dist
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    try:
        if args.resume:
            if args.preset or args.config:
                raise ValueError("--resume continues the run with its own configuration: drop --preset/--config")
            trainer = trainer_cls.resumed(args.out, overrides)
        else:
            trainer = trainer_cls(make_config(overrides), args.out)
        path = trainer.run()
    finally:
        dist.shutdown()
    if path is not None:
        print(f"model: {path}")
    return 0


def encoder_cmd(args) -> int:
    from .encoder_training import EncoderTrainer
    t = EncoderTrainer(args.model, args.out, steps=args.steps, batch=args.batch, alpha=args.alpha,
                       data=args.data, teacher=args.teacher, resume=args.resume, device=args.device)
    print(f"model with encoder: {t.run()}")
    return 0


def directions_cmd(args) -> int:
    from anycost.formats.checkpoints import load_model, save_model

    from .attributes import AttributeMeter
    from .directions import directions_to_file, named_pcs, projected_faces, supervised_directions
    from .heldout import paired_teacher
    from .teachers import open_teacher
    from .trainer import command_line, git_commit
    model = load_model(args.model)
    g = model.generator.eval().requires_grad_(False)
    named, pcs = named_pcs(g, args.pc)            # bad --pc fails before the long part
    if args.pc_strips:
        from .model_card import pc_strips
        print(f"component strips: {pc_strips(g, args.pc_strips)}")
    judge = projected_faces(model, args.eval, args.judge_steps) if args.judge_steps >= 0 else None
    print(f"candidates judged on {args.eval} " + ("projected teacher faces" if judge is not None else "samples"))
    spec = paired_teacher(model.metadata)           # its images of the same z: another set of labels
    teacher = open_teacher(spec) if spec else None
    meter = AttributeMeter()
    try:
        dirs, reports, sd = supervised_directions(g, meter, args.samples, args.eval, args.sliders, log_fn=print,
                                                  judge_wplus=judge, teacher=teacher)
    finally:
        meter.close()
    dirs.update(named)
    dirs.update(dict(list(pcs.items())[:max(0, args.unnamed_pcs)]))
    meta_dirs, tensors = directions_to_file(dirs, reports, set(named))
    meta = dict(model.metadata, directions=meta_dirs, attribute_sd={k: round(v, 4) for k, v in sd.items()},
                directions_training={"samples": args.samples, "eval": args.eval, "named_components": args.pc,
                                     "fitted_on": ["samples"] + ([f"teacher {spec}"] if spec else []),
                                     "judged_on": (f"teacher faces projected in {args.judge_steps} steps"
                                                   if judge is not None else "samples"),
                                     "command": command_line(), "commit": git_commit()})
    meta.pop("classifier_quality", None)
    extra = {k: v for k, v in model.extra_tensors.items() if not k.startswith("directions.")}
    extra.update(tensors)
    path = save_model(args.out, model.generator, meta, extra, encoder=model.encoder)
    print(f"wrote {path} ({len(dirs)} directions)")
    return 0


def report_cmd(args) -> int:
    from .report import write_report
    print(f"wrote {write_report(args.model, args.out, args.images, args.steps, log_fn=print)}")
    return 0


def release_cmd(args) -> int:
    from .release import release
    ablations = {label: Path(path) for label, path in _labelled(args.ablation, "--ablation", "LABEL=MODEL").items()}
    release(args.model, args.out, args.name, ablations, half=not args.full_precision)
    return 0


def creps_release_cmd(args) -> int:
    from .release import release_creps
    release_creps(args.model, args.out, args.name, half=not args.full_precision)
    return 0


def model_card_cmd(args) -> int:
    from .model_card import write_model_card
    out = write_model_card(args.model, args.out, args.projections, args.slider_faces, args.detect_samples)
    print(f"wrote {out}")
    return 0


def creps_card_cmd(args) -> int:
    from .creps_card import write_creps_card
    print(f"wrote {write_creps_card(args.model, args.out, args.latents, args.faces, args.steps, log_fn=print)}")
    return 0


def bench_cmd(args) -> int:
    import tempfile

    import torch

    from anycost.core.timing import cpu_name
    from anycost.formats.checkpoints import save_model

    from .trainer import Trainer

    results = {"preset": args.preset, "cpu": cpu_name(), "threads": torch.get_num_threads(), "stages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(args.preset, overrides={"device": "cpu"} if not torch.cuda.is_available() else {})
        init = Path(tmp) / "stage1.safetensors"
        warm = "teacher" if base.teacher else "renderer"
        for stage in (warm, "multires", "adach"):
            tc = load_config(args.preset, overrides={"stage": stage, "init": str(init) if stage == "adach" else None,
                                                     "device": base.device})
            trainer = Trainer(tc, Path(tmp) / stage, progress=False)
            if stage == "multires":
                save_model(init, trainer.g)
            for _ in range(2):
                trainer.train_step()
            t0 = time.perf_counter()
            for _ in range(args.iters):
                trainer.train_step()
            dt = time.perf_counter() - t0
            ips = args.iters * tc.batch / dt
            results["stages"][stage] = {"images_per_s": round(ips, 2), "s_per_iter": round(dt / args.iters, 3),
                                        "batch": tc.batch, "resolution": trainer.gcfg.resolution}
            print(f"{stage}: {ips:.2f} images/s ({dt / args.iters:.2f} s/iteration, batch {tc.batch}, "
                  f"{trainer.gcfg.resolution} px, {results['threads']} threads)")
    out = args.out or Path("bench-results") / f"train-{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")
    return 0


def alignment_cmd(args) -> int:
    from .alignment_fit import fit_model_file
    print(json.dumps(fit_model_file(args.model, args.samples)))
    print(f"wrote the alignment recipe into {args.model}")
    return 0


def alignment_accuracy_cmd(args) -> int:
    import platform

    from anycost.editing.faces.detection import FaceDetector
    from anycost.editing.faces.recipes import Recipe, model_recipe
    from anycost.formats.registry import open_model

    from .alignment_accuracy import alignment_errors
    detector = FaceDetector()
    t0 = time.time()
    runs = {"demo recipe, 128 px crop": (model_recipe(open_model("demo").metadata), 128),
            "FFHQ recipe, 1024 px crop": (Recipe(), 1024)}
    results = {}
    for name, (recipe, res) in runs.items():
        assert recipe is not None                    # the built-in demo declares its alignment
        r = alignment_errors(recipe, res, detector, args.faces, args.seed)
        results[name] = r
        print(f"{name}: {r['found']}/{r['faces']} faces found; landmark error mean {r['mean_px']} px, median "
              f"{r['median_px']}, 90th percentile {r['p90_px']}, max {r['max_px']} "
              f"({100 * r['mean_share_of_crop']:.2f} % of the crop)")
    detector.close()
    out = {"command": "anycost-train " + " ".join(sys.argv[1:]), "machine": platform.processor() or platform.machine(),
           "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.time() - t0, 1), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
