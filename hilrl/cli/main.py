"""The ``hilrl`` command: one verb per job, each with its own ``--help``.

Each verb lives in ``hilrl/cli/<module>.py`` with two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

Modules are imported only when their verb runs, so ``hilrl --help`` stays fast and a
verb's heavy dependencies (torch, mujoco, grpc) load only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hilrl import __version__
from hilrl.config.loader import ConfigError, split_overrides


@dataclass(frozen=True)
class Verb:
    name: str
    module: str
    summary: str
    description: str


VERBS: tuple[Verb, ...] = (
    Verb(
        "config",
        "hilrl.cli.config_cmd",
        "print a resolved config, or every config field with its documentation",
        "Load a config file plus dotted overrides, validate it, and print the result as "
        "YAML. With --fields, list every field with its type, default and documentation.",
    ),
    Verb(
        "check-env",
        "hilrl.cli.check_env",
        "run gymnasium's env checker on every sim task",
        "Build each built-in sim task (state-only and with cameras) through make_env and "
        "run gymnasium.utils.env_checker.check_env on it; prints a pass/fail table.",
    ),
    Verb(
        "calibrate",
        "hilrl.cli.calibrate",
        "calibrate a real arm's joints (motor offsets, ranges, directions) into its file",
        "With torque off, hold the arm in its calibration pose, turn each joint a little in "
        "its positive direction, then sweep every joint through its travel; the motor ids, "
        "homing offsets, ranges and directions go to robot.calibration_file (--leader: the "
        "leader arm of teleop.leader.robot). See docs/real_robot.md.",
    ),
    Verb(
        "teleop",
        "hilrl.cli.teleop",
        "drive the sim or a robot with an input device, showing the end-effector pose",
        "Teleoperate the env of the config with teleop.device (keyboard, gamepad, hid, "
        "leader, sim, none) in real time at env.fps, printing the end-effector pose "
        "(x, y, z, roll, pitch, yaw, gripper) every tick; camera frames show in a window "
        "when a display exists.",
    ),
    Verb(
        "find-limits",
        "hilrl.cli.find_limits",
        "teleoperate for a while and print the end-effector or joint ranges as config YAML",
        "Teleoperate for --seconds while tracking the min / max of the end-effector "
        "position and orientation (--mode ee) or of every joint (--mode joint), then print "
        "them as a YAML snippet for a config file (env.workspace for ee, with a margin).",
    ),
    Verb(
        "record",
        "hilrl.cli.record",
        "record operator episodes into a LeRobot dataset",
        "Run the env in record mode with teleop.device driving and save every episode "
        "(state, cameras, executed action, reward, done / truncated, intervention flag, "
        "gripper penalty) into dataset.root, one atomic commit per episode. Operator events: "
        "success / failure end an episode, re-record discards it and records it again, "
        "quit stops. --resume appends to an existing dataset.",
    ),
    Verb(
        "replay",
        "hilrl.cli.replay",
        "replay a recorded episode's actions on the sim or a robot",
        "Reset the env as when the episode was recorded and execute its actions at the "
        "dataset's fps (real time; --fast steps the sim as fast as it can), printing how "
        "far the replayed state is from the recorded one.",
    ),
    Verb(
        "crop-roi",
        "hilrl.cli.crop_roi",
        "crop and resize a dataset's camera images into a new dataset",
        "Choose a rectangle per camera (an OpenCV window when a display exists, or --roi "
        "camera=top,left,height,width), write a new dataset with every camera cropped and "
        "resized (--resize H,W), episode by episode, and print the env.images config that "
        "applies the same crop to live observations.",
    ),
    Verb(
        "view",
        "hilrl.cli.view",
        "look at a dataset frame by frame (rerun, or an mp4 and a contact sheet)",
        "Show cameras, state, action, reward and intervention of each frame: in rerun when "
        "rerun-sdk is installed, otherwise as one mp4 per episode (cameras side by side "
        "with a reward / intervention strip) and a PNG contact sheet, written to --out.",
    ),
    Verb(
        "label-sim",
        "hilrl.cli.label_sim",
        "record sim frames labelled with ground-truth success, for a reward classifier",
        "Drive the sim with the simulated operator's expert (it solves the task and keeps "
        "going after success), with random actions and early give-ups mixed in, and save "
        "every frame with next.reward = the ground-truth success of its own state into "
        "the dataset folder (reward.label sets the mix).",
    ),
    Verb(
        "train-reward",
        "hilrl.cli.train_reward",
        "train a reward classifier on a labelled dataset",
        "Train the vision reward classifier (shared encoder + MLP head) on a labelled "
        "LeRobot dataset: episode-wise validation split, class balancing, early stopping, "
        "a success threshold calibrated on validation frames; saves safetensors weights + "
        "JSON metadata, ROC / confusion PNGs and TensorBoard logs.",
    ),
    Verb(
        "eval-reward",
        "hilrl.cli.eval_reward",
        "score a trained reward classifier on a labelled dataset",
        "Run a saved reward classifier through the env's reward hook on every frame of a "
        "labelled dataset and print accuracy, precision, recall, F1 and ROC-AUC at its "
        "threshold, with ROC / confusion PNGs.",
    ),
    Verb(
        "eval",
        "hilrl.cli.eval",
        "evaluate a trained policy checkpoint: success rate with CI, return, videos",
        "Load the policy from a run's latest complete checkpoint (or one checkpoint folder), "
        "run N deterministic episodes in the run's env with no operator, print the success "
        "rate with its 95% Wilson interval, the mean return and episode length, append a "
        "summary to metrics/eval.jsonl and write episode videos to videos/.",
    ),
    Verb(
        "plot",
        "hilrl.cli.plot",
        "plot a run's success rate, return, intervention rate and learner curves",
        "Read metrics/episodes.jsonl, learner.jsonl and eval.jsonl of a run folder (missing "
        "or partial files are fine) and write PNGs to <run>/plots: success rate, episodic "
        "return and intervention rate against env steps (rolling means, eval points marked) "
        "and the learner's losses, temperature and update rate.",
    ),
    Verb(
        "train",
        "hilrl.cli.train",
        "the main job: learner + actors on this machine (demos recorded first if missing)",
        "Record demonstrations with the simulated operator when train.demo_dataset is "
        "missing (sim), start a learner and train.num_actors actor processes, show a live "
        "status line (env steps, updates/s, success and intervention rates, policy lag), "
        "and stop everything cleanly on Ctrl-C with a final checkpoint. --resume continues "
        "the run in run.output_dir. Writes config, checkpoints, metrics, TensorBoard logs "
        "and plots into run.output_dir.",
    ),
    Verb(
        "learner",
        "hilrl.cli.learner",
        "the learner process: replay, SAC updates, weights to actors, checkpoints",
        "Serve actors over gRPC on transport.host:port, put their transitions into the "
        "replay buffers (demos from train.demo_dataset), run SAC updates after the warm-up, "
        "publish weights every train.publish_every_s, checkpoint, and log metrics into "
        "run.output_dir. Stops after run.total_env_steps, or on SIGINT / SIGTERM, with a "
        "final checkpoint.",
    ),
    Verb(
        "actor",
        "hilrl.cli.actor",
        "an actor process: run episodes with the newest policy, send them to the learner",
        "Connect to the learner at transport.host:port, wait for its weights, run episodes "
        "on the env (the operator in teleop.device may intervene) and send every step and "
        "episode summary, until --max-steps or SIGINT / SIGTERM.",
    ),
    Verb(
        "train-offline",
        "hilrl.cli.train_offline",
        "train SAC on a recorded dataset only and write a checkpoint",
        "Load a LeRobot dataset into the demo buffer and run --updates SAC updates on it "
        "(online_ratio 0), then write a checkpoint into run.output_dir that hilrl actor, "
        "hilrl eval and hilrl train --resume can start from.",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hilrl",
        description="Human-in-the-loop reinforcement learning for robot manipulators "
        "(HIL-SERL). Run 'hilrl <verb> --help' for each verb's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb in VERBS:
        sub.add_parser(verb.name, help=verb.summary, add_help=False)
    return parser


def build_verb_parser(verb: Verb) -> argparse.ArgumentParser:
    module = importlib.import_module(verb.module)
    parser = argparse.ArgumentParser(
        prog=f"hilrl {verb.name}",
        description=verb.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    return parser


def is_dataset_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a :class:`hilrl.data.lerobot.DatasetError`.

    Looked up without importing the dataset package (pyarrow, PyAV), which verbs that
    never touch a dataset do not load: if it is not loaded, nothing raised its error.
    """
    errors = sys.modules.get("hilrl.data.lerobot.errors")
    return errors is not None and isinstance(exc, errors.DatasetError)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbs = {v.name: v for v in VERBS}
    if not args or args[0] in ("-h", "--help"):
        build_parser().print_help()
        return 0
    if args[0] == "--version":
        print(f"hilrl {__version__}")
        return 0
    if args[0] not in verbs:
        build_parser().print_usage(sys.stderr)
        print(
            f"hilrl: unknown verb '{args[0]}'; choose one of: {', '.join(verbs)}", file=sys.stderr
        )
        return 2
    verb = verbs[args[0]]
    parser = build_verb_parser(verb)
    module = importlib.import_module(verb.module)
    plain, overrides = split_overrides(args[1:])
    ns = parser.parse_args(plain)
    if overrides and not hasattr(ns, "overrides"):
        parser.error(f"this verb takes no config overrides: {' '.join(overrides)}")
    ns.overrides = overrides
    try:
        return int(module.run(ns) or 0)
    except ConfigError as exc:
        print(f"hilrl {verb.name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not is_dataset_error(exc):
            raise
        # A dataset file missing or damaged: one line naming it, no traceback.
        print(f"hilrl {verb.name}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hilrl {verb.name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
