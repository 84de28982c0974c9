"""anycost-backend bench: MACs and CPU latency of every sub-generator, saved as JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from anycost.cli.options import parse_float_list, parse_int_list
from anycost.core.defaults import TRAINED_RATIOS
from anycost.core.errors import AnycostError

NAME = "bench"
HELP = "measure MACs and median batch-1 latency of every (channel ratio x resolution) configuration"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="model to time (path or name)")
    src.add_argument("--arch", default="ffhq-1024",
                     help="named architecture with random weights (default ffhq-1024, the paper's config-f)")
    p.add_argument("--ratios", default=",".join(f"{r:g}" for r in TRAINED_RATIOS), help="channel ratios")
    p.add_argument("--resolutions", help="comma-separated (default: the model's last four levels)")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds per configuration (default 5)")
    p.add_argument("--impl", default="auto", choices=["auto", "grouped", "weight", "activation"],
                   help="modulated-conv form of the reference path")
    p.add_argument("--paths", default="fast,reference",
                   help="what to time: fast (the daemon's path), fast-lowp (the same with previews' bfloat16 and "
                        "int8 layers wherever faster, whatever their fidelity), reference (default: fast,reference)")
    p.add_argument("--form", help="force one conv form on every layer of the fast path it applies to "
                                  "(default: the fastest measured per layer on this machine)")
    p.add_argument("--reuse-rows", metavar="ROWS",
                   help="instead: the fast path with and without the previous render's levels, for edits "
                        "moving W+ rows from each given row on (at --ratios/--resolutions' first values)")
    p.add_argument("--layer-search", metavar="BUDGETS",
                   help="instead: per-layer channel configurations found on this machine for each latency "
                        "budget (ms) at each of --resolutions (default: the two lowest elastic ones), "
                        "against the best uniform configuration within the same budget")
    p.add_argument("--against-official", nargs="?", const="default", metavar="DIR",
                   help="instead: our fast path and the official Anycost GAN code (models/ and cuda_op/ of "
                        "mit-han-lab/anycost-gan in DIR; default: ../shared/reference/anycost-gan of a source "
                        "checkout) in the same run, same weights, interleaved, under the same allocator settings "
                        "and as the official code runs by default; with --arch (its random weights)")
    p.add_argument("--out", type=Path, help="JSON file (default bench-results/<model>-<threads>t.json)")
    p.add_argument("--e2e", action="store_true",
                   help="instead: edit->preview and render latency through a real daemon over loopback "
                        "(budgets 50/100/250 ms; --model or the default model)")
    p.add_argument("--n", type=int, default=40, help="edits per budget with --e2e")
    p.add_argument("--budgets", default="50,100,250", help="preview budgets (ms) with --e2e")
    p.add_argument("--busy", type=int, default=0, metavar="N",
                   help="with --e2e: N neighbour processes each keep a core busy while the edits run, "
                        "as an editor would")
    p.add_argument("--tcp", action="store_true", help="with --e2e: over loopback TCP instead of the default "
                                                      "transport (a Unix socket where there is one)")
    p.add_argument("--memory", action="store_true",
                   help="instead: the daemon's resident memory before, at its peak and 5 s after an 8192 px "
                        "edit and render, and preview latency around it, as shipped and with --keep-memory")
    p.add_argument("--creps", metavar="ARCH", help="instead: time and peak memory of a CREPS architecture "
                                                  "(creps-demo, creps-ffhq-256/512/1024; random weights) against "
                                                  "output size, tiled and untiled")
    p.add_argument("--sizes", default="128,256,512,1024,2048,4096", help="output sides with --creps")
    p.add_argument("--tile", type=int, default=256, help="tile side with --creps")
    p.add_argument("--untiled-max", type=int, default=1024, help="largest side also rendered untiled with --creps")


def run(args) -> int:
    if args.e2e:
        return run_e2e_command(args)
    if args.memory:
        return run_memory_command(args)
    if args.creps:
        return run_creps_command(args)
    if args.against_official:
        return run_official_command(args)
    import torch

    from anycost.bench.synthesis import environment, format_table, matmul_peak, run_bench, to_json
    from anycost.core.memory import keep_freed_memory
    from anycost.core.paths import state_dir
    from anycost.formats.registry import open_model
    from anycost.inference.conv_forms import FormChooser

    if args.repeat < 1:
        raise AnycostError(f"--repeat must be at least 1, got {args.repeat}")
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    if not paths or any(p not in ("fast", "fast-lowp", "reference") for p in paths):
        raise AnycostError(f"--paths takes fast, fast-lowp and/or reference, got {args.paths!r}")
    try:
        chooser = FormChooser(state_dir() / "calibration", fixed=args.form)
    except ValueError as e:
        raise AnycostError(str(e)) from None
    kept = keep_freed_memory()
    if args.reuse_rows:
        return run_reuse_command(args, chooser)
    if args.layer_search:
        return run_layer_search_command(args, chooser)
    spec = args.model or f"random:{args.arch}"
    model = open_model(spec)
    g = model.generator
    ratios = parse_float_list(args.ratios, "--ratios")
    resolutions = parse_int_list(args.resolutions, "--resolutions") if args.resolutions else None
    for res in resolutions or []:
        g.resolve_target_res(res)
    threads = torch.get_num_threads()
    print(f"model {spec}: {g.cfg.resolution}px, threads {threads}, {args.repeat} rounds", file=sys.stderr)
    peak = matmul_peak()
    rows = run_bench(g, ratios, resolutions, repeat=args.repeat, impl=args.impl, paths=paths, chooser=chooser,
                     peak=peak, log=lambda m: print(m, file=sys.stderr))
    env = dict(environment(threads), keep_freed_memory=kept)
    print(f"CPU: {env['cpu']} ({env['logical_cpus']} logical), torch {env['torch']}, threads {threads}")
    print(f"fp32 matrix-multiply peak, this run: {peak:.1f} GMAC/s; freed memory kept in the process: {kept}")
    print(format_table(rows))
    extra = {"matmul_peak_gmac_per_s": peak, "conv_forms": chooser.report(),
             "forced_form": args.form, "winograd_available": chooser.winograd}
    return save(args.out or Path("bench-results") / f"{spec.replace(':', '-').replace('/', '_')}-{threads}t.json",
                to_json(rows, env, spec, extra))


def save(out: Path, payload: dict) -> int:
    """Every benchmark saves its figures, and says where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"saved {out}")
    return 0


def run_e2e_command(args) -> int:
    from anycost.bench.e2e import run_e2e
    from anycost.bench.synthesis import environment

    budgets = parse_float_list(args.budgets, "--budgets")
    if args.n < 1 or args.busy < 0 or any(b <= 0 for b in budgets):
        raise AnycostError("--n must be at least 1, --busy at least 0 and every budget positive")
    result = run_e2e(args.model, args.threads, budgets=budgets, n=args.n,
                     log=lambda m: print(m, file=sys.stderr), tcp=args.tcp, busy=args.busy)
    result["environment"] = environment(result["threads"])
    print(f"CPU: {result['environment']['cpu']}, daemon threads {result['threads']}, model {result['model']}, "
          f"transport {result['transport']}, busy neighbour processes {result['busy_neighbours']}")
    print("| request | round trip median ms | p95 ms | render median ms | outside render ms | share | served by |")
    print("|---|---|---|---|---|---|---|")
    for budget, r in result["budgets"].items():
        served = ", ".join(f"{k} ({v})" for k, v in r["configs"].items())
        print(f"| edit, budget {budget} ms | {r['round_trip_median_ms']} | {r['round_trip_p95_ms']} | "
              f"{r['render_median_ms']} | {r['outside_render_median_ms']} | {r['transport_share']:.0%} | {served} |")
    r = result["render"]
    print(f"| render {r['size'][0]}x{r['size'][1]} | {r['round_trip_median_ms']} | {r['round_trip_p95_ms']} | "
          f"{r['render_median_ms']} | {r['outside_render_median_ms']} | {r['transport_share']:.0%} | full |")
    busy = f"-busy{args.busy}" if args.busy else ""
    return save(args.out or Path("bench-results")
                / f"e2e-{_stem(args.model)}-{result['threads']}t-{result['transport']}{busy}.json",
                result)


def run_memory_command(args) -> int:
    from anycost.bench.memory import run_memory
    from anycost.bench.synthesis import environment
    from anycost.cli.serve import default_threads

    if not sys.platform.startswith("linux"):
        raise AnycostError("bench --memory reads /proc: Linux only")
    result = run_memory(args.model, args.threads, log=lambda m: print(m, file=sys.stderr))
    result["environment"] = environment(args.threads or default_threads())
    print(f"CPU: {result['environment']['cpu']}, model {result['runs'][0]['model']}, output {result['side']}² px")
    print("| daemon | RSS before MB | peak MB | 5 s after MB | preview ms before | first after | after |")
    print("|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        print(f"| {'--keep-memory' if r['keep_memory'] else 'as shipped'} | {r['rss_before_mb']} | "
              f"{r['rss_peak_mb']} | {r['rss_5s_after_mb']} | {r['preview_ms_before']} | "
              f"{r['preview_ms_first_after']} | {r['preview_ms_after']} |")
    return save(args.out or Path("bench-results") / f"memory-{_stem(args.model)}.json", result)


def _stem(model: str | None) -> str:
    """A results file's name part for a model spec (a path, a name or random:ARCH)."""
    return Path((model or "default").replace("/", "_").replace(":", "-")).stem


def run_creps_command(args) -> int:
    import torch

    from anycost.bench.creps import format_table
    from anycost.bench.creps import run as run_creps
    from anycost.bench.synthesis import environment
    from anycost.models.creps import creps_architecture
    creps_architecture(args.creps)                       # a clear error for an unknown name
    threads = torch.get_num_threads()
    rows = run_creps(args.creps, parse_int_list(args.sizes, "--sizes"), args.tile, args.untiled_max, threads,
                     log=lambda m: print(m, file=sys.stderr))
    env = environment(threads)
    print(f"CPU: {env['cpu']} ({env['logical_cpus']} logical), torch {env['torch']}, threads {threads}")
    print(format_table(rows))
    return save(args.out or Path("bench-results") / f"{args.creps}-{threads}t.json", {"environment": env, "rows": rows})


def run_reuse_command(args, chooser) -> int:
    import torch

    from anycost.bench.synthesis import environment, reuse_bench
    from anycost.formats.registry import open_model

    spec = args.model or f"random:{args.arch}"
    g = open_model(spec).generator
    ratio = parse_float_list(args.ratios, "--ratios")[0]
    res = parse_int_list(args.resolutions, "--resolutions")[0] if args.resolutions else g.cfg.resolution
    g.resolve_target_res(res)
    rows = parse_int_list(args.reuse_rows, "--reuse-rows")
    if any(not 0 <= r < g.n_style for r in rows):
        raise AnycostError(f"--reuse-rows must be in 0..{g.n_style - 1}")
    result = reuse_bench(g, ratio, res, rows, repeat=max(args.repeat, 3), chooser=chooser)
    print("| config | edit moves rows | levels reused | with reuse ms | without ms |")
    print("|---|---|---|---|---|")
    for r in result:
        print(f"| {r['ratio']:g}x@{r['resolution']} | {r['first_row']}.. | {r['levels_reused']} | "
              f"{r['reuse_median_ms']:.1f} | {r['fresh_median_ms']:.1f} |")
    threads = torch.get_num_threads()
    return save(args.out or Path("bench-results") / f"reuse-{spec.replace(':', '-').replace('/', '_')}-{threads}t.json",
                {"model": spec, "environment": environment(threads), "rows": result})


def run_layer_search_command(args, chooser) -> int:
    import torch

    from anycost.bench.layer_search import best_uniform, cached_search, reference_renders
    from anycost.bench.synthesis import environment
    from anycost.core.paths import state_dir
    from anycost.editing.directions import fingerprint
    from anycost.formats.registry import open_model
    from anycost.inference.fast import FastSynthesis

    spec = args.model or f"random:{args.arch}"
    g = open_model(spec).generator
    budgets = parse_float_list(args.layer_search, "--layer-search")
    resolutions = (parse_int_list(args.resolutions, "--resolutions") if args.resolutions
                   else sorted(g.cfg.elastic_resolutions)[:2])
    for res in resolutions:
        g.resolve_target_res(res)
    fast = FastSynthesis(g, chooser)
    probe = reference_renders(g, fast)                   # the same latents and full renders for every search

    def log(m):
        print(m, file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for res in resolutions:
        for budget in budgets:
            found = cached_search(g, fast, fingerprint(g), res, budget, state_dir() / "calibration",
                                  probe=probe, log=log)
            rows.append({"per_layer": found.__dict__, "uniform": best_uniform(g, fast, probe, res, budget)})
    print("| budget ms | res | per-layer ratios (by level) | ms | PSNR dB | best uniform that fits | ms | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        f, u = r["per_layer"], r["uniform"]
        n_levels = len([k for k in g.cfg.levels if k <= f["resolution"]])
        by_level = ",".join(f"{x:g}" for x in f["ratios"][1:2 * n_levels:2])
        ucol = f"x{u['ratio']:g} | {u['latency_ms']:.1f} | {u['psnr']:.2f}" if u else "none | - | -"
        print(f"| {f['budget_ms']:g} | {f['resolution']} | {by_level}{'' if f['fits'] else ' (does not fit)'} | "
              f"{f['latency_ms']:.1f} | {f['psnr']:.2f} | {ucol} |")
    threads = torch.get_num_threads()
    return save(args.out or Path("bench-results")
                / f"layers-{spec.replace(':', '-').replace('/', '_')}-{threads}t.json",
                {"model": spec, "environment": environment(threads), "rows": rows})


def run_official_command(args) -> int:
    import torch

    from anycost.bench.official import check_official_dir, default_official_dir, format_table, run_against_official
    from anycost.bench.synthesis import environment
    from anycost.core.paths import state_dir
    from anycost.models.config import GeneratorConfig, architecture

    if args.model:
        raise AnycostError("--against-official times random weights of an --arch the official code builds, not --model")
    if args.against_official == "default":
        found = default_official_dir()
        if found is None:
            raise AnycostError("no official code found beside this checkout; give its folder: "
                               "--against-official DIR (models/ and cuda_op/ of mit-han-lab/anycost-gan)")
        folder = check_official_dir(found)
    else:
        folder = check_official_dir(Path(args.against_official))
    try:
        cfg = architecture(args.arch)
    except ValueError as e:
        raise AnycostError(str(e)) from None
    multiplier = next((m for m in (1, 2) if GeneratorConfig.from_multiplier(cfg.resolution, m).channels == cfg.channels
                       and cfg.style_dim == 512 and cfg.n_mlp == 8), None)
    if multiplier is None:
        raise AnycostError(f"--arch {args.arch} is not an architecture the official constructor builds "
                           "(StyleGAN2 channels, 512-dim style, 8 mapping layers): use ffhq-1024 or car-512")
    if args.repeat < 1:
        raise AnycostError(f"--repeat must be at least 1, got {args.repeat}")
    ratios = parse_float_list(args.ratios, "--ratios")
    resolutions = (parse_int_list(args.resolutions, "--resolutions") if args.resolutions
                   else cfg.elastic_resolutions[-4:])
    bad = [r for r in resolutions if r not in cfg.levels]
    if bad:
        raise AnycostError(f"--resolutions {bad} are not levels of {args.arch} ({cfg.levels})")
    configs = [(r, res) for r in sorted(ratios, reverse=True) for res in sorted(resolutions, reverse=True)]
    threads = torch.get_num_threads()
    print(f"{args.arch} against the official code in {folder}: {len(configs)} configurations, threads {threads}, "
          f"{args.repeat} rounds", file=sys.stderr)
    result = run_against_official(folder, cfg.resolution, multiplier, configs, args.repeat, threads,
                                  calibration=state_dir() / "calibration", log=lambda m: print(m, file=sys.stderr))
    result.update(environment=environment(threads), official_dir=str(folder), arch=args.arch)
    env = result["environment"]
    print(f"CPU: {env['cpu']} ({env['logical_cpus']} logical), torch {env['torch']}, threads {threads}, "
          f"{args.repeat} interleaved rounds, medians; {env['date']}")
    for impl, note in result["workers"].items():
        print(f"  {impl}: {note.get('note', '')}")
    print(format_table(result))
    return save(args.out or Path("bench-results") / f"official-{args.arch}-{threads}t.json", result)
