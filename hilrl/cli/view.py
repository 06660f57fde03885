"""``hilrl view``: look at a dataset frame by frame.

With rerun-sdk installed (``--backend auto`` or ``rerun``) the frames go to rerun: a
viewer window with ``--spawn``, else ``<out>/<dataset>.rrd`` (open it with ``rerun``).
Otherwise ``--out`` gets ``contact_sheet.png`` and ``episode_NNN.mp4`` per episode (see
:mod:`hilrl.data.view`). A per-episode summary prints either way.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from hilrl.config.loader import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="the dataset folder")
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default: <dataset name>_view in the working directory)",
    )
    parser.add_argument(
        "--episodes",
        default=None,
        metavar="LIST",
        help="episodes to show, e.g. '0,2,5-7' (default: all)",
    )
    parser.add_argument(
        "--columns",
        type=int,
        default=8,
        metavar="N",
        help="frames per episode in the contact sheet (default 8)",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "rerun", "files"),
        default="auto",
        help="'rerun' (needs rerun-sdk), 'files' (mp4 + PNG) or 'auto' (rerun when installed)",
    )
    parser.add_argument("--no-video", dest="video", action="store_false", help="only the sheet")
    parser.add_argument(
        "--spawn", action="store_true", help="rerun: open a viewer window instead of a .rrd file"
    )


def parse_episodes(text: str | None, available: list[int]) -> list[int]:
    """``'0,2,5-7'`` -> [0, 2, 5, 6, 7], each checked against the dataset."""
    if text is None:
        return list(available)
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else ("", part)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError("--episodes", text, "expected indices like 0,2,5-7") from None
    bad = [e for e in out if e not in set(available)]
    if bad:
        n = len(available)
        raise ConfigError(
            "--episodes",
            text,
            f"episode {bad[0]} is out of range: the dataset has {n} episodes"
            + (f" ({min(available)}..{max(available)})" if n else ""),
        )
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    # start-up: pyarrow and PyAV load when the verb runs, not for its --help
    from hilrl.data.lerobot import LeRobotDatasetReader
    from hilrl.data.lerobot.features import INTERVENTION, REWARD
    from hilrl.data.view import EpisodeFrames, contact_sheet, episode_video, log_rerun

    if args.columns <= 0:
        raise ConfigError("--columns", args.columns, "must be a positive count")
    src = Path(args.dataset)
    reader = LeRobotDatasetReader(src)  # a DatasetError is one line (hilrl.cli.main)
    chosen = parse_episodes(args.episodes, [e.index for e in reader.episodes])
    if not chosen:
        raise ConfigError("DATASET", str(src), "has no episodes to show")
    rr = _rerun(args.backend)
    out = Path(args.out) if args.out else Path(f"{src.resolve().name}_view")
    if rr is None and not reader.camera_keys:
        raise ConfigError("DATASET", str(src), "has no cameras to draw")
    episodes = []
    print("episode  frames  return  intervened  task")
    for idx in chosen:
        info = reader.episode_info(idx)
        ep = EpisodeFrames(idx, reader.episode(idx), info.tasks[0] if info.tasks else "")
        episodes.append(ep)
        ret = float(ep.column(REWARD).sum())
        inter = int((ep.column(INTERVENTION) > 0.5).sum())
        print(f"{idx:7d}  {ep.length:6d}  {ret:+6.2f}  {inter:10d}  {ep.task}")
    out.mkdir(parents=True, exist_ok=True)  # only once every chosen episode has been read
    if rr is not None:
        rrd = None if args.spawn else out / f"{src.resolve().name}.rrd"
        frames = log_rerun(
            rr, episodes, app_id=f"hilrl_view_{src.resolve().name}", save_path=rrd, spawn=args.spawn
        )
        where = "the rerun viewer" if rrd is None else str(rrd)
        print(f"view: logged {frames} frames of {len(episodes)} episodes to {where}")
        return 0
    sheet = out / "contact_sheet.png"
    w, h = contact_sheet(episodes, args.columns, sheet, title=f"{src}  ({reader.fps} fps)")
    print(f"view: wrote {sheet} ({w}x{h})")
    if args.video:
        for ep in episodes:
            path = out / f"episode_{ep.index:03d}.mp4"
            n, vw, vh = episode_video(ep, reader.fps, path)
            print(f"view: wrote {path} ({n} frames, {vw}x{vh})")
    return 0


def _rerun(backend: str) -> Any | None:
    """The rerun module for the chosen backend, or None for files (imported only here)."""
    if backend == "files":
        return None
    try:
        return importlib.import_module("rerun")
    except ImportError:
        if backend == "rerun":
            raise ConfigError(
                "--backend", "rerun", "rerun-sdk is not installed (pip install rerun-sdk)"
            ) from None
        return None
