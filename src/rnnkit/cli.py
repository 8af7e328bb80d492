"""The `rnnkit` command: the only module that reads argv.

Runs are created, resumed and opened through rnnkit.runs, which finds each run's task in the registry
(rnnkit.tasks); this module names no task: a task adds its own options to the commands that read runs.
Each subcommand's modules are imported only when that subcommand runs, so a command that needs no torch
(`rnnkit sample --engine numpy`) never imports it.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import textwrap
import time

from rnnkit.errors import UsageError

__all__ = ["UsageError", "build_parser", "main"]

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
LEADER_GRACE_SECONDS = 5.0  # a failing follower rank's wait, so that the leader's one line is not cut off


class OneLineParser(argparse.ArgumentParser):
    """Command-line mistakes are reported like every other bad input: one line on stderr, exit 2."""

    _intermixing = False

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """A command's options may stand before, between or after its positionals (`predict RUN
        --checkpoint latest TEXT`), as users expect; a parser of subcommands parses as argparse does."""
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def config_keys_help() -> str:
    """Every task's config keys with their defaults, for `rnnkit train --help`."""
    from dataclasses import fields

    from rnnkit.config import sections
    from rnnkit.tasks import all_tasks

    lines = ["config keys (--set SECTION.KEY=VALUE; values in TOML syntax, bare words are strings):"]
    for task in all_tasks():
        lines.append(f"  task={task.name} ({task.summary}):")
        for section, section_class in sections(task.config_class).items():
            keys = ", ".join(f"{item.name}={item.default!r}" for item in fields(section_class))
            lines.append(
                textwrap.fill(keys, width=100, initial_indent=f"    [{section}] ", subsequent_indent="        ")
            )
    return "\n".join(lines)


def checkpoint_option(parser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="NAME",
        help="latest, best or a kept checkpoint such as step-00001200 (default: best if the run has one, else latest)",
    )


def add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a model (default: the shakespeare-char preset, a character-level language model)",
        description="Train a model of any task: the preset (or --set task=NAME) chooses the task. Settings come "
        "from the dataclass defaults, then the preset, then --set, then the flags below. Limits count the whole "
        "run, resumes included.",
        epilog=config_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "preset",
        nargs="?",
        metavar="PRESET|CONFIG.toml",
        help="a shipped preset name or a TOML file of overrides (default: shakespeare-char)",
    )
    train.add_argument("--data", metavar="FILE", help="the training data (the task's training-data key)")
    train.add_argument("--val", metavar="FILE", help="the validation data (the task's validation-data key)")
    train.add_argument("--out", metavar="DIR", help="the new run directory (default: a new directory under runs/)")
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR exactly where its last checkpoint left it; only the limits, "
        "device and reporting intervals may change",
    )
    train.add_argument("--seed", type=int, metavar="S", help="random seed for initialisation and dropout (train.seed)")
    train.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimisation steps (train.max_steps)")
    train.add_argument("--max-epochs", type=float, metavar="N", help="stop after N passes over the training data")
    train.add_argument("--max-time", type=float, metavar="SECONDS", help="stop after this many seconds of training")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key, e.g. --set model.hidden_size=256 (repeatable)",
    )


# The commands that read a trained run: (help, description). Each takes the run and --checkpoint; the
# run's task gives the rest (rnnkit.tasks.Task.options), and the task's handler runs it.
RUN_COMMAND_TEXTS = {
    "sample": (
        "generate text from a trained language model",
        "Generate text from a language-model run (its best checkpoint, or --checkpoint), streamed to stdout as "
        "it is chosen. Unset options take the run's [sample] config.",
    ),
    "eval": (
        "evaluate a trained run on its validation data or a file; prints the task's metrics",
        "Evaluate a run (its best checkpoint, or --checkpoint) and print its task's metrics as one JSON object. A "
        "language model follows the protocol of EQUATIONS.md (the whole text as one stream, batch 1, state "
        "carried): nll in nats per predicted token, bpc = nll / ln 2, perplexity = exp(nll), tokens.",
    ),
    "predict": (
        "label new inputs with a trained classifier or tagger; one JSON line per input for a classifier",
        "Label each TEXT (or, with none, each line of standard input) with the run's model (its best "
        "checkpoint, or --checkpoint). A classifier prints one JSON line per input: the text, the label, the "
        "probability of every label, and the words the vocabulary does not hold (read as <unk>). A tagger "
        "prints CoNLL-U (or tsv) with the predicted tags.",
    ),
    "score": (
        "score each line of a text with a language model, or each sentence pair with a translation model",
        "Score each line of FILE (or standard input) with a language-model run: one JSON line per input line "
        "with the summed natural-log probability of its tokens (its line end included), the token count, the "
        "perplexity, and the words read as <unk>. Each line is scored from a fresh state unless --carry. A "
        "translation run scores each sentence pair (a TSV file, a prefix of two files, or source<TAB>target "
        "lines on standard input): log p(target | source), its target tokens (the end token included) and "
        "their perplexity.",
    ),
    "translate": (
        "translate sentences with a trained translation model",
        "Translate each line of FILE (or standard input) with a translation run (its best checkpoint, or "
        "--checkpoint) by beam search, and print one translation per line, detokenized; --json adds the "
        "log-probability, the ranking score and the attention weights (target tokens x source tokens).",
    ),
    "export": (
        "write a trained model as an ONNX file, checked with onnxruntime",
        "Write the run's model (its best checkpoint, or --checkpoint) as an ONNX file with torch's exporter "
        "(the onnx extra), then run it with onnxruntime at several batch sizes and lengths it was not traced "
        "with and compare with torch. Prints one JSON line: the file, what its outputs are, its operators and "
        "the largest absolute difference. A language model maps token ids and the state in to next-token "
        "log-probabilities and the state out; a classifier, token ids and lengths to logits; a tagger, words, "
        "their characters and lengths to tag scores, with the CRF's transitions beside them.",
    ),
}


def task_options(command: str) -> list[tuple[object, list]]:
    """(the option, the tasks that take it) of each option a task adds to the command, each once."""
    from rnnkit.tasks import all_tasks

    options: dict[tuple[str, ...], tuple[object, list]] = {}
    for task in all_tasks():
        for option in task.options.get(command, ()):
            known = options.setdefault(option.flags, (option, []))
            if known[0] != option:
                raise ValueError(f"{command} {'/'.join(option.flags)}: two tasks define it differently")
            known[1].append(task)
    return list(options.values())


def add_run_command_parser(commands, command: str) -> None:
    summary, description = RUN_COMMAND_TEXTS[command]
    parser = commands.add_parser(command, help=summary, description=description)
    parser.add_argument("run", metavar="DIR", help="the run directory, or a shipped model's name (rnnkit models)")
    checkpoint_option(parser)
    groups, added = {}, []
    for option, tasks in task_options(command):
        if option.group and option.group not in groups:
            groups[option.group] = parser.add_mutually_exclusive_group()
        target = groups[option.group] if option.group else parser
        added.append((target.add_argument(*option.flags, **option.keywords), tasks))
    parser.set_defaults(task_options=added)  # (argparse's action, the tasks that take it), for run_command


def add_experiment_parser(commands) -> None:
    from rnnkit.experiments import EXPERIMENT_MODULES, experiment_module

    experiment = commands.add_parser(
        "experiment",
        help="reproduce a lecture claim: train, then write results.json, report.md and plots",
        description="Run one of the lectures' experiments through the normal training path. Each writes results.json "
        "(every run), report.md (the lecture's number beside ours) and PNG plots into --out.",
    )
    names = experiment.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name in EXPERIMENT_MODULES:
        module = experiment_module(name)
        add_arguments = module.add_arguments
        add_arguments(names.add_parser(name, help=module.SUMMARY, description=module.__doc__.split("\n\n")[0]))


def add_view_parser(commands) -> None:
    from rnnkit import viewer

    view = commands.add_parser("view", help=viewer.SUMMARY, description=viewer.__doc__.split("\n\n")[0])
    viewer.add_arguments(view)


def view(args: argparse.Namespace) -> int:
    from rnnkit import viewer

    return viewer.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rnnkit", description="Recurrent neural networks from their textbook equations.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_parser(commands)
    for command in RUN_COMMAND_TEXTS:
        add_run_command_parser(commands, command)
    add_experiment_parser(commands)
    commands.add_parser(
        "models",
        help="list the models shipped with rnnkit (use a name in place of a run directory)",
        description="List the trained models that ship inside the package; `rnnkit sample NAME`, "
        "`rnnkit eval NAME` and the experiments take a name in place of a run directory.",
    )
    add_view_parser(commands)
    gradcheck = commands.add_parser(
        "gradcheck",
        help="check the NumPy engine's hand-written BPTT against finite differences and torch autograd",
        description="Check the NumPy engine's hand-written backpropagation through time for every "
        "cell and variant against central finite differences and against torch autograd. "
        "Prints a table and exits non-zero if any check fails.",
    )
    gradcheck.add_argument("--seed", type=int, default=0, help="random seed for sizes and data (default 0)")
    gradcheck.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest relative error that passes (default 1e-6)"
    )
    return parser


def limit_values(args: argparse.Namespace) -> dict[str, object]:
    flags = {"train.max_steps": args.max_steps, "train.max_epochs": args.max_epochs, "train.max_time": args.max_time}
    return {key: value for key, value in flags.items() if value is not None}


def train(args: argparse.Namespace) -> int:
    """One process, or one rank of several under torchrun: then only the leader (rank 0) speaks, and a
    rank that stops because another failed or was lost says so in one line."""
    from rnnkit.train.distributed import LeaderFailed, LostRank, world_from_environment

    world = world_from_environment()
    if not world.distributed:
        return train_run(args)
    try:
        code = train_run(args)
    except LeaderFailed as error:
        if world.leader:
            print(f"rnnkit train: error: {error}", file=sys.stderr)
        code = EXIT_USAGE
    except UsageError as error:
        if world.leader:  # the other ranks meet the same problem; the leader reports it
            print(f"rnnkit train: error: {error}", file=sys.stderr)
        else:  # before ending (which makes torchrun stop the leader) leave the leader time to say it
            time.sleep(LEADER_GRACE_SECONDS)
        code = EXIT_USAGE
    except LostRank:
        report_lost_rank()
        code = EXIT_FAILED
    # A rank ends here, everything it wrote closed: the interpreter's own teardown could still meet the
    # threads of torch's process group and abort a finished run, so it is skipped.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def report_lost_rank() -> None:
    from rnnkit.train.distributed import lost_ranks

    lost = lost_ranks()
    print(f"rnnkit train: {lost}; stopping (the last checkpoint stays: continue with --resume)", file=sys.stderr)
    sys.stderr.flush()


def train_run(args: argparse.Namespace) -> int:
    from rnnkit.config import check_seed_option, parse_assignment, with_values
    from rnnkit.runs import new_config, open_run, preset_used, resume_run, start_parallel_run, start_run
    from rnnkit.tasks import get_task
    from rnnkit.train.distributed import LostRank, join_world, leave_world
    from rnnkit.train.trainer import TrainingDiverged

    check_seed_option("--seed", args.seed)
    if args.resume is not None:
        given = [
            name
            for name, value in (
                ("PRESET", args.preset),
                ("--data", args.data),
                ("--val", args.val),
                ("--out", args.out),
                ("--seed", args.seed),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with --resume: the run keeps its config")
        saved = open_run(args.resume).config
        schema = type(saved)  # --set is checked against the run's own task
        assignments = dict(parse_assignment(assignment, schema) for assignment in args.set)
        overrides = {**assignments, **limit_values(args)}
        world = join_world(with_values(saved, overrides).train.device)
        trainer = resume_run(args.resume, overrides, world=world)
    else:
        config = new_config(args.preset, args.set, limit_values(args))
        keys = get_task(config.task).data_keys
        flags = ((keys["train"], args.data), (keys["validation"], args.val), ("train.seed", args.seed))
        config = with_values(config, {key: value for key, value in flags if value is not None})  # (keys may coincide)
        world = join_world(config.train.device)
        trainer = start_run(config, args.out) if not world.distributed else start_parallel_run(config, args.out, world)
        trainer.preset = preset_used(args.preset, args.set)
    if world.leader:
        print(f"rnnkit train: run directory {trainer.run_directory.path}", file=sys.stderr)
    finished = False  # whether the other ranks can be waited for at the end
    try:
        reason = trainer.run(resumed=args.resume is not None)
        finished = True
    except TrainingDiverged as error:  # every rank diverges together
        finished = True
        if world.leader:
            path = trainer.run_directory.path
            print(f"rnnkit train: {error}; the last good checkpoint is in {path}", file=sys.stderr)
        return EXIT_FAILED
    except LostRank:
        report_lost_rank()  # at once: leaving the process group may take a while, and the launcher is waiting
        return EXIT_FAILED
    finally:
        trainer.parallel = None  # torch's DistributedDataParallel must go before its process group
        leave_world(wait=finished)
    if not world.leader:
        return 0 if reason != "interrupted" else 128 + (trainer.stop_signal or signal.SIGINT)
    if reason == "interrupted":
        name = signal.Signals(trainer.stop_signal).name if trainer.stop_signal else "a signal"
        print(
            f"rnnkit train: stopped by {name} at step {trainer.step}; checkpoint saved; continue with "
            f"rnnkit train --resume {trainer.run_directory.path}",
            file=sys.stderr,
        )
        return 128 + (trainer.stop_signal or signal.SIGINT)
    print(
        f"rnnkit train: stopped at step {trainer.step} ({reason}); run directory {trainer.run_directory.path}",
        file=sys.stderr,
    )
    return 0


def run_command(args: argparse.Namespace) -> int:
    """sample, eval, predict or score: the run's task's handler, given the values of its options. An option
    that only other tasks take is refused when given."""
    from rnnkit.runs import open_run_for, read_checkpoint

    run = open_run_for(args.command, args.run)
    options = {}
    for action, tasks in args.task_options:
        value = getattr(args, action.dest)
        if run.task in tasks:
            options[action.dest] = value
        elif value != action.default and value != []:  # given, though this run's task does not take it
            owners = " and ".join(task.summary for task in tasks)
            name = action.option_strings[0] if action.option_strings else action.metavar
            raise UsageError(f"{name} applies to {owners} runs; {args.run} is a {run.task.summary} run")
    command = run.task.commands[args.command]
    read_checkpoint(run, args.checkpoint, lambda checkpoint: command(run, checkpoint, options, sys.stdout))
    return 0


def experiment(args: argparse.Namespace) -> int:
    from rnnkit.experiments import Interrupted, experiment_module, write_incomplete

    try:
        return experiment_module(args.experiment).run(args)
    except (Interrupted, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        directory, runs = write_incomplete(args.experiment)
        where = f"; the {runs} finished run(s) are in {directory}/results.json and report.md, marked incomplete"
        print(
            f"rnnkit experiment: stopped by {signal.Signals(signum).name}{where if directory else ''}", file=sys.stderr
        )
        return 128 + signum


def models(args: argparse.Namespace) -> int:
    from rnnkit.pretrained import card, shipped_models

    for name in shipped_models():
        about = card(name)
        print(
            f"{name}\t{about['description']}; {about['parameters']:,} parameters, validation nll "
            f"{about['validation_nll']:.3f} ({about['validation_bpc']:.3f} bits per character) after "
            f"{about['training_seconds']:.0f} s of training"
        )
    return 0


def gradcheck(args: argparse.Namespace) -> int:
    from rnnkit.config import check_seed_option

    check_seed_option("--seed", args.seed)
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise UsageError(f"--tolerance must be a finite number > 0, got {args.tolerance:g}")
    from rnnkit.gradcheck import run

    return run(seed=args.seed, tolerance=args.tolerance)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit, a write fails (and is reported) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a character the terminal cannot show becomes '?'
    try:
        commands = {"train": train, "experiment": experiment, "models": models, "gradcheck": gradcheck, "view": view}
        return commands.get(args.command, run_command)(args)
    except UsageError as error:
        print(f"rnnkit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"rnnkit {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
