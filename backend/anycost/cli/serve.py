"""anycost-backend serve: run the daemon in the foreground."""
from __future__ import annotations

import argparse
import logging
import os
import signal

from anycost.core.errors import AnycostError
from anycost.protocol import messages as P

NAME = "serve"
HELP = "run the editing daemon (ZeroMQ) in the foreground"


def default_threads() -> int:
    """All cores but one for the editor, except on two cores: there the editor mostly waits for
    the preview it asked for, and both cores make it 1.3-1.4x sooner (docs/benchmarks.md)."""
    cores = os.cpu_count() or 2
    return cores if cores <= 2 else cores - 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind", default=P.default_address(),
                   help="ZeroMQ address (default: ANYCOST_ADDRESS, else this user's private socket, "
                        f"{P.default_address()}; {P.TCP_DEFAULT} where there are no Unix sockets); "
                        "beyond loopback needs CURVE keys")
    p.add_argument("--model", action="append", dest="models",
                   help="model to serve (repeatable; the first is the default); default: the built-in demo "
                        "and the built-in CREPS demo")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--curve", action="store_true", help="require CURVE keys even on loopback")
    p.add_argument("--max-image-pixels", type=int, default=4096 * 4096, help="largest accepted image")
    p.add_argument("--max-sessions", type=int, default=64, help="sessions kept on disk (oldest evicted)")
    p.add_argument("--steps", type=int, default=100, help="default projection steps")
    p.add_argument("--refine-budget-ms", type=float, default=1000.0,
                   help="latency budget of the refined preview sent after a pause")
    p.add_argument("--refine-delay", type=float, default=0.35, help="seconds of quiet before refining (-1 = never)")
    p.add_argument("--keep-memory", action="store_true",
                   help="keep freed memory even after jobs far larger than a preview (by default it is given "
                        "back; this is for measuring the difference: bench --memory)")
    p.add_argument("--fp32-previews", action="store_true",
                   help="draw previews in float32 only (default: layers in bfloat16 or int8 where that is "
                        "faster on this CPU and the preview stays within 40 dB of its float32 image; the "
                        "final is always float32)")
    p.add_argument("--verbose", action="store_true")


def run(args) -> int:
    import torch

    from anycost.core.memory import keep_freed_memory
    from anycost.core.paths import keys_dir, state_dir
    from anycost.editing.perceptual import make_perceptual
    from anycost.formats.registry import open_model
    from anycost.protocol.messages import is_loopback
    from anycost.service.engine import Engine
    from anycost.service.keys import load_server_keys
    from anycost.service.logs import setup_logging
    from anycost.service.server import BindError, Server
    from anycost.service.sessions import SessionStore

    log_path = setup_logging(state_dir() / "logs", args.verbose)
    log = logging.getLogger("anycost.backend")
    if args.threads is None:
        torch.set_num_threads(default_threads())
    keep_freed_memory()                  # big feature maps reused, not page-faulted on every render
    curve = None
    if args.curve or not is_loopback(args.bind):
        try:
            curve = load_server_keys(keys_dir())
        except AnycostError as e:
            raise AnycostError(f"refusing to listen on {args.bind} without encryption: {e}") from None
    specs = args.models or default_models()
    models = {}
    for spec in specs:
        m = open_model(spec, device=args.device, kind=None)
        models[m.name if m.name not in models else spec] = m
    engine = Engine(models, SessionStore(state_dir() / "sessions", args.max_sessions),
                    make_perceptual(device=args.device), state_dir(), args.device, args.max_image_pixels,
                    args.refine_budget_ms, args.steps, lowp_previews=not args.fp32_previews)
    server = Server(engine, args.bind, curve=curve, refine_delay_s=args.refine_delay,
                    threads=torch.get_num_threads(), give_back_memory=not args.keep_memory)
    try:
        server.open_socket()
    except BindError as e:
        raise AnycostError(str(e)) from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stop())
    log.info("listening on %s (models: %s; threads %d; log %s)", args.bind, ", ".join(models),
             torch.get_num_threads(), log_path)
    print(f"anycost-backend listening on {args.bind}", flush=True)
    server.serve_forever()
    if server.failure is not None:       # not a clean stop: say so, and exit non-zero
        raise AnycostError(f"the daemon stopped because of an error: {server.failure} (log: {log_path})")
    log.info("stopped")
    return 0


def default_models() -> list[str]:
    """The built-in models: the anycost demo (the default) and, when installed, the CREPS demo that
    shares its W space (finals at the selection's exact size)."""
    from anycost.formats.creps import BUILTIN_CREPS_DEMO, BUILTIN_CREPS_DEMO_NAME
    from anycost.formats.registry import DEFAULT_MODEL
    return [DEFAULT_MODEL] + ([BUILTIN_CREPS_DEMO_NAME] if BUILTIN_CREPS_DEMO.is_file() else [])
