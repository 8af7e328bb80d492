"""The `rnnkit` command: the only module that reads argv.

Runs are created, resumed and opened through rnnkit.train.runs, which finds each run's task in the
registry (rnnkit.tasks); this module names no task. Each subcommand's modules are imported only when
that subcommand runs, so a command that needs no torch (`rnnkit sample --engine numpy`) never imports it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import textwrap

from rnnkit.errors import UsageError

__all__ = ["UsageError", "build_parser", "main"]

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
MAX_SEED = 2**63


class OneLineParser(argparse.ArgumentParser):
    """Command-line mistakes are reported like every other bad input: one line on stderr, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
            lines.append(textwrap.fill(keys, width=100, initial_indent=f"    [{section}] ",
                                       subsequent_indent="        "))
    return "\n".join(lines)


def checkpoint_option(parser) -> None:
    parser.add_argument("--checkpoint", metavar="NAME",
                        help="latest, best or a kept checkpoint such as step-00001200 (default: best if the run "
                        "has one, else latest)")


def add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train", help="train a model (default: the shakespeare-char preset, a character-level language model)",
        description="Train a model of any task: the preset (or --set task=NAME) chooses the task. Settings come "
        "from the dataclass defaults, then the preset, then --set, then the flags below. Limits count the whole "
        "run, resumes included.",
        epilog=config_keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("preset", nargs="?", metavar="PRESET|CONFIG.toml",
                       help="a shipped preset name or a TOML file of overrides (default: shakespeare-char)")
    train.add_argument("--data", metavar="FILE", help="the training data (the task's training-data key)")
    train.add_argument("--val", metavar="FILE", help="the validation data (the task's validation-data key)")
    train.add_argument("--out", metavar="DIR", help="the new run directory (default: a new directory under runs/)")
    train.add_argument("--resume", metavar="DIR",
                       help="continue the run in DIR exactly where its last checkpoint left it; only the limits, "
                       "device and reporting intervals may change")
    train.add_argument("--seed", type=int, metavar="S", help="random seed for initialisation and dropout (train.seed)")
    train.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimisation steps (train.max_steps)")
    train.add_argument("--max-epochs", type=float, metavar="N", help="stop after N passes over the training data")
    train.add_argument("--max-time", type=float, metavar="SECONDS", help="stop after this many seconds of training")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one config key, e.g. --set model.hidden_size=256 (repeatable)")


def add_sample_parser(commands) -> None:
    sample = commands.add_parser(
        "sample", help="generate text from a trained language model",
        description="Generate text from a language-model run (its best checkpoint, or --checkpoint), streamed to "
        "stdout as it is chosen. Unset options take the run's [sample] config.",
    )
    sample.add_argument("run", metavar="DIR", help="the run directory, or a shipped model's name (rnnkit models)")
    checkpoint_option(sample)
    prime = sample.add_mutually_exclusive_group()
    prime.add_argument("--prime", metavar="TEXT", help="text to start from (printed, then continued)")
    prime.add_argument("--prime-file", metavar="FILE", help="read the prime from a UTF-8 file")
    sample.add_argument("--length", type=int, metavar="N", help="tokens to generate after the prime")
    sample.add_argument("--temperature", type=float, metavar="T", help="divide the logits by T; 0 is greedy (argmax)")
    sample.add_argument("--top-k", type=int, metavar="K", help="sample only among the K most likely tokens (K >= 1)")
    sample.add_argument("--top-p", type=float, metavar="P",
                        help="sample only among the most likely tokens whose probabilities sum to P, in (0, 1]")
    sample.add_argument("--seed", type=int, metavar="S",
                        help="random seed: the same seed gives the same text (default: a fresh seed each time)")
    sample.add_argument("--num-samples", type=int, default=1, metavar="N", help="how many samples (default 1)")
    sample.add_argument("--skip-unknown", action="store_true",
                        help="drop prime tokens that are not in the vocabulary instead of failing")
    sample.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                        help="torch (default), or numpy: the NumPy engine alone, without importing torch")
    sample.add_argument("--beam", type=int, metavar="N",
                        help="instead of sampling, the N most likely continuations (beam search, up to --length tokens "
                        "or a line end), as JSON lines with their log-probabilities")
    sample.add_argument("--length-penalty", type=float, default=0.0, metavar="A",
                        help="beam search ranks by logp / length^A (default 0: the raw sum)")


def add_eval_parser(commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="evaluate a trained run on its validation data or a file; prints the task's metrics",
        description="Evaluate a run (its best checkpoint, or --checkpoint) and print its task's metrics as one JSON "
        "object. A language model follows the protocol of EQUATIONS.md (the whole text as one stream, batch 1, state "
        "carried): nll in nats per predicted token, bpc = nll / ln 2, perplexity = exp(nll), tokens.",
    )
    evaluate.add_argument("run", metavar="DIR", help="the run directory, or a shipped model's name (rnnkit models)")
    checkpoint_option(evaluate)
    evaluate.add_argument("--data", metavar="FILE", help="data to evaluate on (default: the run's validation data)")


def add_score_parser(commands) -> None:
    score = commands.add_parser(
        "score", help="score each line of a text with a language model: log-probability, tokens, perplexity",
        description="Score each line of FILE (or standard input) with a language-model run: one JSON line per input "
        "line with the summed natural-log probability of its tokens (its line end included), the token count, the "
        "perplexity, and the words read as <unk>. Each line is scored from a fresh state unless --carry.",
    )
    score.add_argument("run", metavar="DIR", help="the run directory")
    score.add_argument("file", nargs="?", metavar="FILE", help="the text to score; - or nothing: standard input")
    checkpoint_option(score)
    score.add_argument("--carry", action="store_true", help="carry the state from each line into the next")


def add_predict_parser(commands) -> None:
    predict = commands.add_parser(
        "predict", help="label new inputs with a trained classifier; one JSON line per input",
        description="Label each TEXT (or, with none, each line of standard input) with the run's model (its best "
        "checkpoint, or --checkpoint). Prints one JSON line per input: the text, the label, the probability of every "
        "label, and the words the vocabulary does not hold (read as <unk>).",
    )
    predict.add_argument("run", metavar="DIR", help="the run directory")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="inputs to label (default: lines of standard input)")
    checkpoint_option(predict)
    predict.add_argument("--engine", choices=("torch", "numpy"), default="torch",
                         help="torch (default), or numpy: the NumPy engine alone, without importing torch")
    predict.add_argument("--conllu", metavar="FILE",
                         help="taggers: tag a CoNLL-U file; the tag column is filled, every other byte kept")
    predict.add_argument("--format", choices=("text", "tsv"),
                         help="taggers, input on stdin: text (a sentence a line, whitespace-tokenised; CoNLL-U out, "
                         "the default) or tsv (token<TAB>tag lines, blank lines between sentences; tsv out)")


def add_experiment_parser(commands) -> None:
    from rnnkit.experiments import EXPERIMENT_MODULES, experiment_module

    experiment = commands.add_parser(
        "experiment", help="reproduce a lecture claim: train, then write results.json, report.md and plots",
        description="Run one of the lectures' experiments through the normal training path. Each writes results.json "
        "(every run), report.md (the lecture's number beside ours) and PNG plots into --out.",
    )
    names = experiment.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name in EXPERIMENT_MODULES:
        module = experiment_module(name)
        add_arguments = module.add_arguments
        add_arguments(names.add_parser(name, help=module.SUMMARY, description=module.__doc__.split("\n\n")[0]))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rnnkit", description="Recurrent neural networks from their textbook equations.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_parser(commands)
    add_sample_parser(commands)
    add_eval_parser(commands)
    add_predict_parser(commands)
    add_score_parser(commands)
    add_experiment_parser(commands)
    commands.add_parser("models", help="list the models shipped with rnnkit (use a name in place of a run directory)",
                        description="List the trained models that ship inside the package; `rnnkit sample NAME`, "
                        "`rnnkit eval NAME` and the experiments take a name in place of a run directory.")
    gradcheck = commands.add_parser(
        "gradcheck",
        help="check the NumPy engine's hand-written BPTT against finite differences and torch autograd",
        description="Check the NumPy engine's hand-written backpropagation through time for every "
        "cell and variant against central finite differences and against torch autograd. "
        "Prints a table and exits non-zero if any check fails.",
    )
    gradcheck.add_argument("--seed", type=int, default=0, help="random seed for sizes and data (default 0)")
    gradcheck.add_argument("--tolerance", type=float, default=1e-6,
                           help="largest relative error that passes (default 1e-6)")
    return parser


def check_seed(flag: str, seed: int | None) -> None:
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise UsageError(f"{flag} must be an integer in [0, 2^63), got {seed}")


def limit_values(args: argparse.Namespace) -> dict[str, object]:
    flags = {"train.max_steps": args.max_steps, "train.max_epochs": args.max_epochs, "train.max_time": args.max_time}
    return {key: value for key, value in flags.items() if value is not None}


def train(args: argparse.Namespace) -> int:
    from rnnkit.config import parse_assignment, with_values
    from rnnkit.tasks import get_task
    from rnnkit.train.runs import new_config, open_run, resume_run, start_run
    from rnnkit.train.trainer import TrainingDiverged

    check_seed("--seed", args.seed)
    if args.resume is not None:
        given = [name for name, value in (("PRESET", args.preset), ("--data", args.data), ("--val", args.val),
                                          ("--out", args.out), ("--seed", args.seed)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with --resume: the run keeps its config")
        schema = type(open_run(args.resume).config)  # --set is checked against the run's own task
        assignments = dict(parse_assignment(assignment, schema) for assignment in args.set)
        trainer = resume_run(args.resume, {**assignments, **limit_values(args)})
    else:
        config = new_config(args.preset, args.set, limit_values(args))
        keys = get_task(config.task).data_keys
        flags = {keys["train"]: args.data, keys["validation"]: args.val, "train.seed": args.seed}
        config = with_values(config, {key: value for key, value in flags.items() if value is not None})
        trainer = start_run(config, args.out)
    print(f"rnnkit train: run directory {trainer.run_directory.path}", file=sys.stderr)
    try:
        reason = trainer.run(resumed=args.resume is not None)
    except TrainingDiverged as error:
        print(f"rnnkit train: {error}; the last good checkpoint is in {trainer.run_directory.path}", file=sys.stderr)
        return EXIT_FAILED
    if reason == "interrupted":
        name = signal.Signals(trainer.stop_signal).name if trainer.stop_signal else "a signal"
        print(f"rnnkit train: stopped by {name} at step {trainer.step}; checkpoint saved; continue with "
              f"rnnkit train --resume {trainer.run_directory.path}", file=sys.stderr)
        return 128 + (trainer.stop_signal or signal.SIGINT)
    print(f"rnnkit train: stopped at step {trainer.step} ({reason}); run directory {trainer.run_directory.path}",
          file=sys.stderr)
    return 0


def sample_options(args: argparse.Namespace) -> dict[str, object]:
    """The sampling options given on the command line, checked under their flag names."""
    from rnnkit.data.text import read_text

    checks = (("--length", args.length, lambda n: n >= 0, "0 or more"),
              ("--temperature", args.temperature, lambda t: math.isfinite(t) and t >= 0, "a finite number, 0 (greedy) or more"),
              ("--top-k", args.top_k, lambda k: k >= 1, "1 or more"),
              ("--top-p", args.top_p, lambda p: 0 < p <= 1, "in (0, 1]"),
              ("--num-samples", args.num_samples, lambda n: n >= 1, "1 or more"))
    for flag, value, valid, expected in checks:
        if value is not None and not valid(value):
            raise UsageError(f"{flag} must be {expected}, got {value:g}")
    check_seed("--seed", args.seed)
    if args.beam is not None and args.beam < 1:
        raise UsageError(f"--beam must be 1 or more, got {args.beam}")
    if not math.isfinite(args.length_penalty):
        raise UsageError(f"--length-penalty must be a finite number, got {args.length_penalty:g}")
    prime = read_text(args.prime_file, minimum_characters=0) if args.prime_file else args.prime
    values = {"length": args.length, "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
              "prime": prime, "seed": args.seed, "num_samples": args.num_samples, "skip_unknown": args.skip_unknown,
              "engine": args.engine, "beam": args.beam, "length_penalty": args.length_penalty}
    return {key: value for key, value in values.items() if value is not None}


def sample(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import open_run_for

    options = sample_options(args)
    run = open_run_for("sample", args.run)
    run.task.sample(run, run.directory.checkpoint(args.checkpoint), options, sys.stdout)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import open_run_for

    run = open_run_for("eval", args.run)
    metrics = run.task.evaluate(run, run.directory.checkpoint(args.checkpoint), args.data)
    finite = {name: value if not isinstance(value, float) or math.isfinite(value) else None
              for name, value in metrics.items()}  # JSON has no NaN or infinity
    print(json.dumps(finite, allow_nan=False))
    return 0


def score(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import open_run_for

    run = open_run_for("score", args.run)
    run.task.score(run, run.directory.checkpoint(args.checkpoint), args.file, {"carry": args.carry}, sys.stdout)
    return 0


def predict(args: argparse.Namespace) -> int:
    from rnnkit.train.runs import open_run_for

    run = open_run_for("predict", args.run)
    options = {"engine": args.engine, "conllu": args.conllu, "format": args.format}
    if run.task.name != "tagger" and (args.conllu or args.format):
        raise UsageError(f"--conllu and --format apply to tagger runs; {args.run} is a {run.task.summary} run")
    run.task.predict(run, run.directory.checkpoint(args.checkpoint), args.texts, options, sys.stdout)
    return 0


def experiment(args: argparse.Namespace) -> int:
    from rnnkit.experiments import experiment_module

    return experiment_module(args.experiment).run(args)


def models(args: argparse.Namespace) -> int:
    from rnnkit.pretrained import card, shipped_models

    for name in shipped_models():
        about = card(name)
        print(f"{name}\t{about['description']}; {about['parameters']:,} parameters, validation nll "
              f"{about['validation_nll']:.3f} ({about['validation_bpc']:.3f} bits per character) after "
              f"{about['training_seconds']:.0f} s of training")
    return 0


def gradcheck(args: argparse.Namespace) -> int:
    check_seed("--seed", args.seed)
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
        commands = {"train": train, "sample": sample, "eval": evaluate, "predict": predict, "score": score,
                    "experiment": experiment, "models": models, "gradcheck": gradcheck}
        return commands[args.command](args)
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
