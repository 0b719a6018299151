"""The ``rnn-tui`` command. Only typer is imported at start-up: torch and textual are imported inside
the commands that need them, so ``rnn-tui --help`` answers at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

DEFAULT_COMMAND = "train"


class DefaultCommandGroup(TyperGroup):
    """``rnn-tui corpus.txt`` means ``rnn-tui train corpus.txt``; ``rnn-tui`` alone trains on the
    bundled corpus. A file named like a subcommand wins only when it is the sole word."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args:
            args = [DEFAULT_COMMAND]
        elif args[0] in ("--help", "-h", "--version"):
            pass
        elif args[0] not in self.commands or (len(args) == 1 and Path(args[0]).is_file()):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultCommandGroup,
    add_completion=False,
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train a character-level LSTM on a text file and watch it learn, live, in the terminal.\n\n"
    "rnn-tui CORPUS.txt opens the live app (same as: rnn-tui train CORPUS.txt).",
)


def fail(message: str, code: int = 2) -> "typer.Exit":
    typer.echo(f"rnn-tui: error: {message}", err=True)
    return typer.Exit(code)


def version_callback(value: bool) -> None:
    if value:
        from rnn_tui import __version__

        typer.echo(f"rnn-tui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    pass


DATA = "Data"
MODEL = "Model"
OPT = "Optimisation"
RUN = "Run"
SAMPLE = "Sampling"


@app.command()
def train(
    corpus_file: Optional[Path] = typer.Argument(None, metavar="[CORPUS]", show_default=False,
                                                 help="Text file to train on (default: the bundled Tiny Shakespeare)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Train on a bundled corpus by name (see: rnn-tui corpora).", rich_help_panel=DATA),
    byte_level: bool = typer.Option(False, "--bytes", help="Byte-level vocabulary: any file, any encoding.", rich_help_panel=DATA),
    val_fraction: Optional[float] = typer.Option(None, help="Fraction at the end held out for validation. [default: 0.1]", rich_help_panel=DATA),
    batch_size: Optional[int] = typer.Option(None, help="Streams per batch. [default: 32]", rich_help_panel=DATA),
    seq_len: Optional[int] = typer.Option(None, help="Truncated-BPTT length. [default: 100]", rich_help_panel=DATA),
    cell: Optional[str] = typer.Option(None, help="lstm, gru or rnn. [default: lstm]", rich_help_panel=MODEL),
    layers: Optional[int] = typer.Option(None, help="Recurrent layers. [default: 2]", rich_help_panel=MODEL),
    hidden: Optional[int] = typer.Option(None, help="Units per layer. [default: 256]", rich_help_panel=MODEL),
    embed: Optional[int] = typer.Option(None, help="Embedding size. [default: 64]", rich_help_panel=MODEL),
    dropout: Optional[float] = typer.Option(None, help="Dropout between layers and before the output. [default: 0.1]", rich_help_panel=MODEL),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (AdamW). [default: 4e-3]", rich_help_panel=OPT),
    warmup_steps: Optional[int] = typer.Option(None, help="Linear warm-up steps. [default: 100]", rich_help_panel=OPT),
    decay_steps: Optional[int] = typer.Option(None, help="Cosine decay length when neither --max-steps nor --max-minutes is set. [default: 5000]", rich_help_panel=OPT),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay. [default: 0]", rich_help_panel=OPT),
    grad_clip: Optional[float] = typer.Option(None, help="Clip gradients to this norm (0: off). [default: 5]", rich_help_panel=OPT),
    seed: Optional[int] = typer.Option(None, help="Random seed. [default: 1337]", rich_help_panel=OPT),
    eval_every: Optional[int] = typer.Option(None, help="Evaluate on the validation split every N steps. [default: 250]", rich_help_panel=RUN),
    eval_chars: Optional[int] = typer.Option(None, help="Validation characters per evaluation (0: all). [default: 250000]", rich_help_panel=RUN),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many steps.", rich_help_panel=RUN),
    max_minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes of training.", rich_help_panel=RUN),
    save_every_minutes: Optional[float] = typer.Option(None, help="Save latest.pt this often. [default: 2]", rich_help_panel=RUN),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or mps. [default: auto]", rich_help_panel=RUN),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch. [default: all cores]", rich_help_panel=RUN),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run directories are created.", rich_help_panel=RUN),
    resume: Optional[str] = typer.Option(None, metavar="RUN_OR_CHECKPOINT", help="Continue a run exactly where it stopped.", rich_help_panel=RUN),
    headless: bool = typer.Option(False, "--headless", help="No live app: print progress lines instead.", rich_help_panel=RUN),
    detach: bool = typer.Option(False, "--detach", help="Train in the background (survives the terminal); watch with: rnn-tui attach.", rich_help_panel=RUN),
    sample_every: Optional[float] = typer.Option(None, "--sample-every", help="Seconds between samples. [default: 15]", rich_help_panel=SAMPLE),
    sample_length: Optional[int] = typer.Option(None, help="Characters per sample. [default: 300]", rich_help_panel=SAMPLE),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (0: argmax). [default: 0.8]", rich_help_panel=SAMPLE),
    top_k: Optional[int] = typer.Option(None, help="Sample from the k likeliest (0: all). [default: 0]", rich_help_panel=SAMPLE),
    prime: Optional[str] = typer.Option(None, help="Text samples start from.", rich_help_panel=SAMPLE),
    theme: Optional[str] = typer.Option(None, help="Colour theme of the live app.", rich_help_panel=RUN),
) -> None:
    """Train on CORPUS (the live app unless --headless)."""
    overrides = {
        "val_fraction": val_fraction, "batch_size": batch_size, "seq_len": seq_len, "cell": cell,
        "layers": layers, "hidden": hidden, "embed": embed, "dropout": dropout, "lr": lr,
        "warmup_steps": warmup_steps, "decay_steps": decay_steps, "weight_decay": weight_decay,
        "grad_clip": grad_clip, "seed": seed, "eval_every": eval_every, "eval_chars": eval_chars,
        "max_steps": max_steps,
        "max_minutes": max_minutes, "save_every_minutes": save_every_minutes, "device": device,
        "threads": threads, "sample_every_s": sample_every, "sample_length": sample_length,
        "temperature": temperature, "top_k": top_k, "prime": prime,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if byte_level:
        overrides["vocab"] = "byte"
    from rnn_tui.core.errors import RnnTuiError
    from rnn_tui.launch import TrainRequest

    request = TrainRequest(corpus_file=corpus_file, corpus_name=corpus, overrides=overrides,
                           runs_dir=runs_dir, resume=resume, theme=theme)
    try:
        request.check()
        if detach and headless:
            raise fail("--detach and --headless do not go together (a detached run logs to RUN/trainer.log)")
        if detach:
            from rnn_tui.detached import start_detached

            run_dir, pid = start_detached(request)
            typer.echo(f"training in the background: {run_dir} (pid {pid})")
            typer.echo(f"  watch and steer it:  rnn-tui attach {run_dir}")
            typer.echo(f"  list runs:           rnn-tui runs --runs-dir {runs_dir}")
            typer.echo(f"  its log:             {run_dir / 'trainer.log'}")
            raise typer.Exit(0)
        if headless:
            from rnn_tui.headless import run_headless

            code = run_headless(request)
        else:
            from rnn_tui.launch import run_app

            code = run_app(request)
    except RnnTuiError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def attach(
    run: Optional[str] = typer.Argument(None, metavar="[RUN]", show_default=False,
                                        help="A run directory or its name (default: the newest running run, else the newest run)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where to look for runs by name."),
    theme: Optional[str] = typer.Option(None, help="Colour theme of the live app."),
) -> None:
    """Watch and steer a run started elsewhere (--detach, or another terminal's app)."""
    from rnn_tui.core.errors import RnnTuiError

    try:
        from rnn_tui.runstate import find_run

        run_dir = find_run(run, runs_dir)
        from rnn_tui.launch import run_viewer

        code = run_viewer(run_dir, theme=theme)
    except RnnTuiError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def runs(runs_dir: Path = typer.Option(Path("runs"), help="Where the runs are.")) -> None:
    """List runs: state (running, finished, crashed...), step, best validation loss."""
    import time

    from rnn_tui.runstate import format_age, list_runs

    found = list_runs(runs_dir)
    if not found:
        typer.echo(f"no runs in {runs_dir}/")
        return
    now = time.time()
    rows = [("RUN", "CORPUS", "STATE", "STEP", "BEST VAL", "UPDATED")]
    for r in found:
        state = f"{r.state} (pid {r.pid})" if r.pid else r.state
        rows.append((r.name, r.corpus, state, "-" if r.step is None else f"{r.step:,}",
                     "-" if r.best_val is None else f"{r.best_val:.4f}", format_age(now - r.updated)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@app.command()
def serve(
    run: Optional[str] = typer.Argument(None, metavar="[RUN]", show_default=False,
                                        help="A run directory or its name (default: as for attach)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but localhost is open to the network."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where to look for runs by name."),
) -> None:
    """Serve a viewer of RUN to web browsers (textual-serve); reach it over ssh -L PORT:localhost:PORT."""
    import shlex

    from rnn_tui.core.errors import RnnTuiError

    try:
        from rnn_tui.runstate import find_run

        run_dir = find_run(run, runs_dir).resolve()
    except RnnTuiError as exc:
        raise fail(str(exc)) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"rnn-tui: warning: serving on {host}: anyone who can reach this port can watch and "
                   f"steer the run; there is no authentication", err=True)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise fail("rnn-tui serve needs textual-serve: pip install textual-serve") from None
    # Each browser tab gets its own process: a viewer of this run, never a new trainer.
    command = f"{shlex.quote(sys.executable)} -m rnn_tui attach {shlex.quote(str(run_dir))}"
    typer.echo(f"serving a viewer of {run_dir} on http://{host}:{port}/ (Ctrl+C stops serving; "
               f"the run goes on)")
    Server(command, host=host, port=port, title=f"rnn-tui · {run_dir.name}").serve()


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory."),
    temperature: float = typer.Option(0.8, min=0.0, help="0 picks the likeliest character every time."),
    top_k: int = typer.Option(0, min=0, help="Sample from the k likeliest characters (0: all)."),
    prime: str = typer.Option("", help="Text to start from; characters outside the vocabulary are skipped with a warning."),
    length: int = typer.Option(500, min=1, help="Characters to generate."),
    seed: Optional[int] = typer.Option(None, help="Seed for repeatable samples."),
    device: str = typer.Option("cpu", help="auto, cpu, cuda or mps."),
) -> None:
    """Print text sampled from a checkpoint."""
    from rnn_tui.core.errors import RnnTuiError

    try:
        from rnn_tui.core.runs import resolve_checkpoint
        from rnn_tui.core.sampling import generate
        from rnn_tui.core.trainer import load_for_inference

        model, vocab, _ = load_for_inference(resolve_checkpoint(checkpoint), device)
        s = generate(model, vocab, length, temperature=temperature, top_k=top_k, prime=prime, seed=seed)
    except RnnTuiError as exc:
        raise fail(str(exc)) from None
    if s.unknown:
        typer.echo(f"rnn-tui: warning: skipped prime characters not in the vocabulary: {' '.join(map(repr, s.unknown))}", err=True)
    sys.stdout.write(s.prime + s.text + "\n")


@app.command()
def info(checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory.")) -> None:
    """Show what a checkpoint holds: config, vocabulary, step, losses."""
    from rnn_tui.core.errors import RnnTuiError

    try:
        from rnn_tui.core import checkpoint as ckpt_io
        from rnn_tui.core.runs import resolve_checkpoint

        path = resolve_checkpoint(checkpoint)
        ck = ckpt_io.load(path)
    except RnnTuiError as exc:
        raise fail(str(exc)) from None
    import math

    vocab = ck.get("vocab", {})
    best = ck.get("best_val", math.inf)
    last = ck.get("last_val")
    lines = [
        f"checkpoint   {path}",
        f"corpus       {ck.get('corpus')}",
        f"vocabulary   {vocab.get('kind')}, {len(vocab.get('codes', []))} symbols",
        f"step         {ck.get('step')} (epoch {ck.get('epoch')}, {ck.get('tokens', 0):,} characters seen)",
        f"best val     {best:.4f} nats/char ({best / math.log(2):.3f} bits/char)" if math.isfinite(best) else "best val     -",
        f"last val     {last:.4f} nats/char" if last is not None else "last val     -",
        "model        " + ", ".join(f"{k}={v}" for k, v in ck.get("model_config", {}).items()),
        "config       " + ", ".join(f"{k}={v}" for k, v in sorted(ck.get("config", {}).items())),
    ]
    typer.echo("\n".join(lines))


@app.command()
def corpora() -> None:
    """List the bundled corpora (use one with --corpus NAME)."""
    from rnn_tui.resources import bundled_corpora

    for name, path in bundled_corpora().items():
        size = path.stat().st_size
        typer.echo(f"{name:24s} {size / 1e6:6.2f} MB  {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
