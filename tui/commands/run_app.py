"""`vramdeck [--model PATH]`: open the app, on the demo model when no model is given."""

from __future__ import annotations

import argparse
import sys

from tui.config import load_settings, settings_path
from tui.engine.client import EngineClient
from tui.engine.settings import LoadSettings
from tui.fit.overhead import OverheadStore
from tui.models.demo import DEMO_MISSING, find_demo_model
from tui.models.discovery import default_locations
from tui.monitor.sampler import Sampler
from tui.profiles.schema import ProfileError
from tui.profiles.store import ProfileStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="GGUF file to load (default: the SmolLM2 demo model)")
    p.add_argument("--n-gpu-layers", "-ngl", type=int, default=-1, help="-1 = all (default)")
    p.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument("--kv", default="f16", help="KV cache type (f16, q8_0, q4_0, ...)")
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto",
                   help="flash attention (default auto, as llama.cpp)")
    p.add_argument("--refresh", type=float, default=None,
                   help="monitor refresh interval, seconds (default: settings.toml, else 1)")
    p.add_argument("--profile", help="start with a saved profile (see `vramdeck profiles list`)")
    p.add_argument("--max-tokens", type=int, help="longest reply, in tokens (default 1024)")


def make_app(args: argparse.Namespace):
    from tui.app import VramdeckApp

    app_settings, problems = load_settings()
    refresh = args.refresh if args.refresh is not None else app_settings.refresh_interval
    common = {"sample_interval": max(0.1, refresh), "overhead_store": OverheadStore(),
              "app_settings": app_settings, "settings_file": settings_path(),
              "settings_problems": problems,
              "model_locations": default_locations(app_settings.models_dirs)}
    if args.profile:
        profile = ProfileStore().load(args.profile)  # ProfileError: main() says which key, which line
        app = VramdeckApp(EngineClient(), Sampler(), settings=profile.load,
                          notice="\n".join(profile.warnings), **common)
        app.sampling = profile.sampling
        app.system_prompt = profile.system_prompt or app.system_prompt
        return app
    notice = ""
    path = args.model
    if path is None:
        demo = find_demo_model()
        path = str(demo) if demo else None
        notice = "" if demo else DEMO_MISSING
    settings = None
    if path is not None:
        settings = LoadSettings(model_path=path, n_gpu_layers=args.n_gpu_layers, n_ctx=args.ctx,
                                type_k=args.kv, type_v=args.kv, flash_attn=args.flash_attn)
    return VramdeckApp(EngineClient(), Sampler(), settings=settings, notice=notice, **common)


def main(args: argparse.Namespace) -> int:
    try:
        app = make_app(args)
        if args.max_tokens is not None:
            app.sampling = app.sampling.with_max_tokens(args.max_tokens)
    except (ProfileError, ValueError) as exc:
        print(f"vramdeck: {exc}", file=sys.stderr)
        return 1
    app.run()
    return 0
