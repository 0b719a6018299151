"""The ``rnn-tui`` command line: typer commands only; each hands its words to the layer that does
the work. Torch and textual are imported inside the commands that need them, so ``rnn-tui --help``
answers at once. Every ``RnnTuiError`` becomes one line and exit code 2, in one place (the group).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from rnn_tui.core.config import TrainConfig
from rnn_tui.core.errors import RnnTuiError
from rnn_tui.core.invocation import command, remember
from rnn_tui.core.text import visible

DEFAULT_COMMAND = "train"
ERROR_EXIT = 2


def plain_flags(params: list[Any]) -> list[Any]:
    """Flags without typer's ``<bool>`` type in the help (a flag takes no value), and arguments
    that take several values without ``<list[str]>`` (``[RUN]...`` says so)."""
    for p in params:
        if isinstance(p, TyperOption) and p.is_flag and p.metavar is None:
            p.metavar = ""
        elif isinstance(p, TyperArgument) and p.nargs != 1:
            p.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    return params


def plain_usage(pieces: list[str]) -> list[str]:
    """Required arguments without typer's braces in the usage line."""
    return [p.replace("{", "").replace("}", "") for p in pieces]


class RnnTuiCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return plain_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return plain_usage(super().collect_usage_pieces(ctx))


class RnnTuiGroup(TyperGroup):
    """``rnn-tui corpus.txt`` means ``rnn-tui train corpus.txt``; ``rnn-tui`` alone trains on the
    bundled corpus. A file named like a subcommand wins only when it is the sole word. A refusal
    of any command is one line on stderr and exit code 2, never a traceback."""

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_flags(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            args = [DEFAULT_COMMAND]
        elif args[0] in ("--help", "-h", "--version"):
            pass
        elif args[0] not in self.commands or (len(args) == 1 and Path(args[0]).is_file()):
            word = args[0]
            if not word.startswith("-") and not Path(word).exists():  # a corpus, or a command mistyped?
                close = difflib.get_close_matches(word, list(self.commands), n=1, cutoff=0.75)
                if close:
                    typer.echo(
                        f"rnn-tui: error: no command or file {visible(word)!r}; did you mean: {command(close[0])}?",
                        err=True,
                    )
                    raise typer.Exit(ERROR_EXIT)
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RnnTuiError as exc:
            # a message may quote a file name or a corpus: shown, never obeyed by the terminal
            typer.echo(f"rnn-tui: error: {visible(str(exc))}", err=True)
            raise typer.Exit(ERROR_EXIT) from None


app = typer.Typer(
    cls=RnnTuiGroup,
    add_completion=False,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train a character-level LSTM on a text file and watch it learn, live, in the terminal.\n\n"
    "rnn-tui CORPUS.txt opens the live app (same as: rnn-tui train CORPUS.txt).",
)


def version_callback(value: bool) -> None:
    if value:
        from rnn_tui import __version__

        typer.echo(f"rnn-tui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    pass


DATA = "Data"
MODEL = "Model"
OPT = "Optimisation"
RUN = "Run"
SAMPLE = "Sampling"
CONFIG_FIELDS = set(TrainConfig().to_dict())
# How a default reads in --help where the value itself would not say it
SHOWN_DEFAULTS = {"threads": "all cores", "device": "auto: cuda, mps or cpu"}


def config_option(field: str, help: str, panel: str, *names: str) -> Any:
    """An option that overrides ``TrainConfig.<field>`` (None: not given); ``--help`` shows the
    config's default, read from the dataclass so it can never drift."""
    default = getattr(TrainConfig(), field)
    shown = SHOWN_DEFAULTS.get(field) or (
        "" if default in (None, "") else f"{default:g}" if isinstance(default, float) else str(default)
    )
    if shown:
        help += f" \\[default: {shown}]"  # escaped: Rich would take [default: …] for markup
    return typer.Option(None, *names, help=help, show_default=False, rich_help_panel=panel)


RUNS_DIR_HELP = "Where run directories are (and new ones are created)."


@app.command(cls=RnnTuiCommand)
def train(
    corpus_file: Optional[Path] = typer.Argument(
        None,
        metavar="CORPUS",
        show_default=False,
        help="Text file to train on (default: the bundled Tiny Shakespeare).",
    ),
    corpus: Optional[str] = typer.Option(
        None, "--corpus", help="Train on a bundled corpus by name (see: rnn-tui corpora).", rich_help_panel=DATA
    ),
    byte_level: bool = typer.Option(
        False, "--bytes", help="Byte-level vocabulary: any file, any encoding.", rich_help_panel=DATA
    ),
    val_fraction: Optional[float] = config_option("val_fraction", "Fraction at the end held out for validation.", DATA),
    max_vocab: Optional[int] = config_option(
        "max_vocab", "Refuse a character vocabulary larger than this (--bytes has 256 symbols).", DATA
    ),
    batch_size: Optional[int] = config_option("batch_size", "Streams per batch.", DATA),
    seq_len: Optional[int] = config_option("seq_len", "Truncated-BPTT length.", DATA),
    cell: Optional[str] = config_option("cell", "lstm, gru or rnn.", MODEL),
    layers: Optional[int] = config_option("layers", "Recurrent layers.", MODEL),
    hidden: Optional[int] = config_option("hidden", "Units per layer.", MODEL),
    embed: Optional[int] = config_option("embed", "Embedding size.", MODEL),
    dropout: Optional[float] = config_option(
        "dropout", "Dropout between layers and before the output (alone: fixed, as in char-rnn).", MODEL
    ),
    late_dropout: Optional[float] = config_option(
        "late_dropout",
        "The dropout rises to this from the 10th to the 30th pass over the text, when higher "
        "(a small text is memorised by then).",
        MODEL,
    ),
    lr: Optional[float] = config_option("lr", "Peak learning rate (AdamW).", OPT),
    warmup_steps: Optional[int] = config_option("warmup_steps", "Linear warm-up steps.", OPT),
    decay_steps: Optional[int] = config_option(
        "decay_steps", "Cosine decay length when neither --max-steps nor --max-minutes is set.", OPT
    ),
    weight_decay: Optional[float] = config_option(
        "weight_decay", "AdamW weight decay on the weight matrices (not the biases).", OPT
    ),
    ema_window: Optional[float] = config_option(
        "ema_window", "Evaluate and sample weights averaged over this share of the steps so far (0: off).", OPT
    ),
    grad_clip: Optional[float] = config_option("grad_clip", "Clip gradients to this norm (0: off).", OPT),
    seed: Optional[int] = config_option("seed", "Random seed.", OPT),
    eval_every: Optional[int] = config_option("eval_every", "Evaluate on the validation split every N steps.", RUN),
    eval_every_minutes: Optional[float] = config_option(
        "eval_every_minutes",
        "... or after this many minutes of training without one (0: steps only).",
        RUN,
    ),
    eval_chars: Optional[int] = config_option("eval_chars", "Validation characters per evaluation (0: all).", RUN),
    max_steps: Optional[int] = config_option("max_steps", "Stop after this many steps.", RUN),
    max_minutes: Optional[float] = config_option("max_minutes", "Stop after this many minutes of training.", RUN),
    save_every_minutes: Optional[float] = config_option("save_every_minutes", "Save latest.pt this often.", RUN),
    device: Optional[str] = config_option("device", "auto, cpu, cuda, cuda:N or mps.", RUN),
    precision: Optional[str] = config_option(
        "precision",
        "auto, bf16, fp16 or fp32. auto, on CUDA: bf16 if the model runs in it, else fp16 with loss "
        "scaling, else fp32 (TF32); on a CPU with AVX512-BF16 or AMX, bf16 for an LSTM; elsewhere fp32.",
        RUN,
    ),
    threads: Optional[int] = config_option("threads", "CPU threads for torch.", RUN),
    nproc: int = typer.Option(
        1,
        "--nproc",
        help="Data-parallel processes on this machine: one per GPU on CUDA (NCCL), else CPU processes "
        "(gloo); --batch-size is per process. Started by PyTorch's elastic launcher, as torchrun does. "
        "\\[default: 1]",
        show_default=False,
        rich_help_panel=RUN,
    ),
    master_port: Optional[int] = typer.Option(
        None,
        "--master-port",
        help="Port the --nproc processes meet on. \\[default: a free one]",
        show_default=False,
        rich_help_panel=RUN,
    ),
    runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP, rich_help_panel=RUN),
    resume: Optional[str] = typer.Option(
        None, metavar="RUN_OR_CHECKPOINT", help="Continue a run exactly where it stopped.", rich_help_panel=RUN
    ),
    headless: bool = typer.Option(
        False, "--headless", help="No live app: print progress lines instead.", rich_help_panel=RUN
    ),
    detach: bool = typer.Option(
        False,
        "--detach",
        help="Train in the background (survives the terminal); watch with: rnn-tui attach.",
        rich_help_panel=RUN,
    ),
    sample_every_s: Optional[float] = config_option(
        "sample_every_s", "Seconds between samples.", SAMPLE, "--sample-every"
    ),
    sample_length: Optional[int] = config_option("sample_length", "Characters per sample.", SAMPLE),
    temperature: Optional[float] = config_option("temperature", "Sampling temperature (0: argmax).", SAMPLE),
    top_k: Optional[int] = config_option("top_k", "Sample from the k likeliest (0: all).", SAMPLE),
    prime: Optional[str] = config_option("prime", "Text samples start from.", SAMPLE),
    theme: Optional[str] = typer.Option(None, help="Colour theme of the live app.", rich_help_panel=RUN),
) -> None:
    """Train on CORPUS (the live app unless --headless)."""
    # The options named like TrainConfig's fields are its overrides: each is said once, above.
    overrides = {k: v for k, v in locals().items() if k in CONFIG_FIELDS and v is not None}
    overrides = TrainConfig.fixed_dropout_when_alone(overrides)
    if byte_level:
        overrides["vocab"] = "byte"
    from rnn_tui.host.request import LaunchError, TrainRequest

    request = TrainRequest(
        corpus_file=corpus_file,
        corpus_name=corpus,
        overrides=overrides,
        runs_dir=runs_dir,
        resume=resume,
        theme=theme,
        nproc=nproc,
        master_port=master_port,
    )
    request.check()
    if detach and headless:
        raise LaunchError("--detach and --headless do not go together (a detached run logs to RUN/trainer.log)")
    from rnn_tui.core.cluster import launched

    if launched() and not headless:  # one of torchrun's processes: no screen, no background of its own
        raise LaunchError("under torchrun, train with --headless (and watch the run with: rnn-tui attach)")
    if detach:
        from rnn_tui.host.detached import start_detached

        run_dir, pid = start_detached(request)
        typer.echo(f"training in the background: {run_dir} (pid {pid})")
        typer.echo(f"  watch and steer it:  {command('attach', run_dir)}")
        # the directory the run is in (a resumed run's, not --runs-dir's), named unless it is ./runs
        where = run_dir.parent
        named = where.resolve() != Path("runs").resolve()
        typer.echo(f"  list runs:           {command('runs', '--runs-dir', where) if named else command('runs')}")
        typer.echo(f"  its log:             {run_dir / 'trainer.log'}")
        return
    if headless:
        from rnn_tui.host.headless import run_headless

        code = run_headless(request)
    else:
        from rnn_tui.ui.runner import run_live_app

        code = run_live_app(request)
    raise typer.Exit(code)


@app.command(cls=RnnTuiCommand)
def attach(
    run: Optional[str] = typer.Argument(
        None,
        metavar="RUN",
        show_default=False,
        help="A run directory or its name (default: the newest running run, else the newest run).",
    ),
    runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP),
    theme: Optional[str] = typer.Option(None, help="Colour theme of the live app."),
) -> None:
    """Watch and steer a run started elsewhere (--detach, or another terminal's app)."""
    from rnn_tui.remote.status import find_run
    from rnn_tui.ui.runner import run_viewer_app

    raise typer.Exit(run_viewer_app(find_run(run, runs_dir), theme=theme))


@app.command(cls=RnnTuiCommand)
def runs(runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP)) -> None:
    """List runs: state (running, finished, crashed...), step trained and saved, best validation loss."""
    import time

    from rich.console import Console
    from rich.table import Table

    from rnn_tui.remote.status import format_age, list_runs

    found = list_runs(runs_dir)
    if not found:
        typer.echo(f"no runs in {runs_dir}/")
        return
    now = time.time()
    rows = []
    for r in found:
        procs = f", {r.world_size} processes" if r.world_size > 1 and r.pid else ""
        state = f"{r.state} (pid {r.pid}{procs})" if r.pid else r.state
        if not r.has_checkpoint and not r.state.startswith(("running", "starting")):
            state += ", no checkpoint"  # nothing for --resume to continue
        saved = "-" if not r.has_checkpoint else "?" if r.saved_step is None else f"{r.saved_step:,}"
        rows.append(
            {
                "RUN": visible(r.name),
                "CORPUS": visible(r.corpus),
                "STATE": state,
                "STEP": "-" if r.step is None else f"{r.step:,}",
                "SAVED": saved,
                "BEST VAL": "-" if r.best_val is None else f"{r.best_val:.4f}",
                "UPDATED": format_age(now - r.updated),
            }
        )
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)  # a pipe gets whole lines
    columns = list(rows[0])
    need = sum(max(len(c), *(len(row[c]) for row in rows)) for c in columns) + 2 * (len(columns) - 1)
    if need > console.width:
        columns.remove("CORPUS")  # a run's name starts with its corpus's: the first to go when narrow
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in columns:
        # names whole (runs of the same minute differ at the end); the state folds if it must
        table.add_column(
            name,
            justify="right" if name in ("STEP", "SAVED", "BEST VAL") else "left",
            no_wrap=name != "STATE",
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    Console(highlight=False, width=None if sys.stdout.isatty() else 1000).print(table, markup=False)


@app.command(cls=RnnTuiCommand)
def compare(
    run: Optional[list[str]] = typer.Argument(
        None,
        metavar="RUN",
        show_default=False,
        help="Runs to pick at first, by directory or name (default: the newest runs under --runs-dir).",
    ),
    runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP),
    theme: Optional[str] = typer.Option(None, help="Colour theme."),
) -> None:
    """Runs side by side: validation and training curves against step, characters or time."""
    from rnn_tui.remote.status import find_run, list_runs
    from rnn_tui.ui.compare import run_compare_app

    picked = [find_run(name, runs_dir) for name in run or []]
    if not picked and not list_runs(runs_dir):
        raise RnnTuiError(f"no runs in {runs_dir}/ to compare (start one with: rnn-tui train CORPUS)")
    raise typer.Exit(run_compare_app(runs_dir, picked, theme=theme))


@app.command(cls=RnnTuiCommand)
def serve(
    run: Optional[str] = typer.Argument(
        None, metavar="RUN", show_default=False, help="A run directory or its name (default: as for attach)."
    ),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but localhost is open to the network."),
    unix_socket: Optional[Path] = typer.Option(
        None, "--socket", help="Serve on this Unix socket (0600) instead of a port: ssh -L 8000:SOCKET HOST."
    ),
    token: Optional[str] = typer.Option(
        None,
        help="The secret the address must carry (default: $RNN_TUI_SERVE_TOKEN, else a new random one).",
        show_default=False,
    ),
    runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP),
) -> None:
    """Serve a viewer of RUN to web browsers (textual-serve), for whoever has the printed address
    with its token; reach it over ssh -L PORT:localhost:PORT."""
    from rnn_tui.remote.status import find_run
    from rnn_tui.ui.web import serve_viewer

    serve_viewer(find_run(run, runs_dir).resolve(), host=host, port=port, token=token, unix_socket=unix_socket)


@app.command(cls=RnnTuiCommand)
def sample(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A checkpoint file or a run directory."),
    temperature: float = typer.Option(0.8, help="0 picks the likeliest character every time (0 to 10)."),
    top_k: int = typer.Option(0, help="Sample from the k likeliest characters (0: all)."),
    prime: str = typer.Option(
        "", help="Text to start from; characters outside the vocabulary are skipped with a warning."
    ),
    length: int = typer.Option(500, help="Characters to generate (1 to 1,000,000)."),
    seed: Optional[int] = typer.Option(None, help="Seed for repeatable samples."),
    device: str = typer.Option("cpu", help="auto, cpu, cuda or mps."),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Write control characters as they are, even to a terminal (they always are to a pipe or file).",
    ),
) -> None:
    """Print text sampled from a checkpoint.

    On a terminal, control characters the model writes (escape sequences: a byte-level model
    trained on binary files writes them often) are shown as visible symbols, never obeyed;
    piped or redirected, the text is written exactly."""
    from rnn_tui.core.config import RANGES, check_device, check_prime

    for option, name, value in (
        ("--temperature", "temperature", temperature),
        ("--top-k", "top_k", top_k),
        ("--length", "sample_length", length),
    ):
        RANGES[name].check(option, value)
    if seed is not None:
        RANGES["seed"].check("--seed", seed)
    check_prime(prime)
    check_device(device)

    from rnn_tui.core.runs import resolve_checkpoint
    from rnn_tui.core.sampling import generate
    from rnn_tui.core.trainer import load_for_inference

    model, vocab, _ = load_for_inference(resolve_checkpoint(checkpoint, or_best=True), device)
    s = generate(model, vocab, length, temperature=temperature, top_k=top_k, prime=prime, seed=seed)
    if s.unknown:
        typer.echo(
            f"rnn-tui: warning: skipped prime characters not in the vocabulary: {' '.join(map(repr, s.unknown))}",
            err=True,
        )
    text = s.prime + s.text
    sys.stdout.write((text if raw or not sys.stdout.isatty() else visible(text)) + "\n")


@app.command(cls=RnnTuiCommand)
def explore(
    target: str = typer.Argument(
        ..., metavar="RUN|CHECKPOINT", help="A run directory or its name, or a checkpoint file."
    ),
    text: Optional[Path] = typer.Option(
        None, "--text", metavar="FILE", help="Probe text (default: a passage of the validation split)."
    ),
    chars: int = typer.Option(2000, "--chars", metavar="N", help="Probe length in characters, 2 to 10,000."),
    json_out: bool = typer.Option(False, "--json", help="Print every view as one JSON object instead of the screen."),
    save_npz: Optional[Path] = typer.Option(
        None, "--save-npz", metavar="PATH", help="Save h, c, the gates and the text as .npz (no screen)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), help=RUNS_DIR_HELP),
    theme: Optional[str] = typer.Option(None, help="Colour theme of the screen."),
) -> None:
    """Inside a model: cells that track the text, next-character guesses, gates, memory."""
    if json_out or save_npz is not None:
        import json

        from rnn_tui.host.explore_offline import explore_to_json

        found = explore_to_json(target, runs_dir, text, chars, save_npz)
        if json_out:
            typer.echo(json.dumps(found, ensure_ascii=False))
        return
    from rnn_tui.ui.runner import run_explorer_app

    raise typer.Exit(run_explorer_app(target, runs_dir, text, chars, theme))


@app.command(cls=RnnTuiCommand)
def info(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A checkpoint file or a run directory."),
) -> None:
    """Show what a checkpoint holds: config, vocabulary, step, losses."""
    import math

    from rnn_tui.core import checkpoint as ckpt_io
    from rnn_tui.core.runs import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    ck = ckpt_io.load(path)
    vocab = ck.get("vocab", {})
    best = ck.get("best_val", math.inf)
    last = ck.get("last_val")
    lines = [
        f"checkpoint   {path}",
        f"corpus       {ck.get('corpus')}",
        f"vocabulary   {vocab.get('kind')}, {len(vocab.get('codes', []))} symbols",
        f"step         {ck.get('step')} (epoch {ck.get('epoch')}, {ck.get('tokens', 0):,} characters seen)",
        f"best val     {best:.4f} nats/char ({best / math.log(2):.3f} bits/char)"
        if math.isfinite(best)
        else "best val     -",
        f"last val     {last:.4f} nats/char" if last is not None else "last val     -",
        f"processes    {ck.get('world_size', 1)}"
        + (
            f" (data-parallel: --batch-size {ck.get('config', {}).get('batch_size')} each, "
            f"{len(ck['hidden'][0][0]) if ck.get('hidden') else '?'} streams in all)"
            if ck.get("world_size", 1) > 1
            else ""
        ),
        f"precision    {ck.get('precision', 'fp32')}"
        + (f" (loss scale {ck['scaler'].get('scale', 0):g})" if isinstance(ck.get("scaler"), dict) else ""),
        "model        " + ", ".join(f"{k}={v}" for k, v in ck.get("model_config", {}).items()),
        "config       "
        + ", ".join(
            f"{k}={visible(v)!r}" if isinstance(v, str) else f"{k}={v}" for k, v in sorted(ck.get("config", {}).items())
        ),
    ]
    typer.echo(visible("\n".join(lines)))


@app.command(cls=RnnTuiCommand)
def corpora() -> None:
    """List the bundled corpora (use one with --corpus NAME)."""
    from rnn_tui.core.resources import bundled_corpora

    for name, path in bundled_corpora().items():
        size = path.stat().st_size
        typer.echo(f"{name:24s} {size / 1e6:6.2f} MB  {path}")


def main() -> None:
    remember()  # hints (here and in the processes we start) spell the command as it was typed
    app()


if __name__ == "__main__":
    main()
