"""What the control channel costs the trainer: chars/s with viewers attached against none.

Each round starts the same trainer (its own process, behind the same ``ProcessLink``, serving its
control socket as every trainer does) and measures its training speed from its own Progress
events, once with no viewer and once with ``--viewers`` viewers connected to the socket, taking
every event (samples, hidden states, progress) as a real viewer does. The viewers read in this
process, so what is measured is the trainer's side: encoding each event once and sending it.
Rounds alternate the order.

    python -m benchmarks.viewer_cost                      # 2x256, 3 rounds of 20 s, 2 viewers
    python -m benchmarks.viewer_cost --seconds 4 --rounds 1 --hidden 64
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

from benchmarks.app_cost import MeasuringLink
from benchmarks.common import median, table
from rnn_tui.core.resources import bundled_corpora
from rnn_tui.host.request import TrainRequest
from rnn_tui.remote.status import live_trainer


def one_round(request, seconds: float, viewers: int) -> tuple[float, int]:
    """Training chars/s, and the events the viewers received."""
    from rnn_tui.remote.client import SocketLink

    link = MeasuringLink(request)
    link.start()
    attached: list[SocketLink] = []
    received = 0
    while link.measuring_for() < seconds:
        for e in link.poll():
            if viewers and not attached and type(e).__name__ == "Started":
                run_dir = Path(e.run_dir)
                deadline = time.monotonic() + 30
                while live_trainer(run_dir) is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                for _ in range(viewers):
                    v = SocketLink(run_dir)
                    v.start()
                    attached.append(v)
        for v in attached:
            received += len(v.poll(100_000))
        time.sleep(0.1)
    link.stop()
    for v in attached:
        received += len(v.poll(100_000))
        v.close()
    return link.rate(), received


def channel_cpu_per_second(viewers: int, sample_every: float, hidden: int = 256, layers: int = 2) -> float:
    """CPU seconds the trainer's process spends per second of training to serve ``viewers``:
    the events of 60 s of training (2 Progress a second, a sample and its hidden states every
    ``sample_every`` s) published to viewers that read them, timed with process CPU time (the
    encoding on the publishing thread and the sending threads together)."""
    import tempfile

    import numpy as np

    from rnn_tui.core import events as ev
    from rnn_tui.remote.client import SocketLink
    from rnn_tui.remote.server import ControlServer
    from rnn_tui.remote.status import write_status

    seconds = 60.0
    with tempfile.TemporaryDirectory(prefix="rnn-") as tmp:
        server = ControlServer(tmp, lambda c: None).start()
        # what serve_session writes: viewers find a running trainer by its status
        write_status(Path(tmp), state="running", pid=os.getpid(), host=socket.gethostname(), socket=str(server.path))
        links = [SocketLink(tmp) for _ in range(viewers)]
        for link in links:
            link.start()
        while server.viewer_count < viewers:
            time.sleep(0.01)
        h = np.random.default_rng(0).standard_normal((layers, 160, hidden)).astype(np.float32)
        events = []
        for i in range(int(seconds * 2)):
            events.append(
                ev.Progress(
                    steps=list(range(i * 4, i * 4 + 4)),
                    losses=[1.5] * 4,
                    step=i * 4 + 4,
                    epoch=0.1,
                    lr=1e-3,
                    grad_norm=0.5,
                    chars_per_s=25_000.0,
                    elapsed_s=i / 2,
                    tokens=i * 12_800,
                )
            )
            if i % max(1, int(sample_every * 2)) == 0:
                events.append(ev.Sampled(step=i, prime="", text="x" * 300, temperature=0.8, top_k=0))
                events.append(ev.Probed(step=i, text="x" * 160, h=h, c=h))
        t0 = time.process_time()
        for e in events:
            server.publish(e)
        got = 0
        while got < len(events) * viewers:
            got += sum(len(link.poll(100_000)) for link in links)
            time.sleep(0.001)
        cpu = time.process_time() - t0
        for link in links:
            link.close()
        server.close()
    # the viewers read in this process too: their decoding is counted, so this is an upper bound
    return cpu / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--viewers", type=int, default=2)
    ap.add_argument("--sample-every", type=float, default=3.0)
    args = ap.parse_args()
    request = TrainRequest(
        corpus_file=bundled_corpora()["tinyshakespeare"],
        runs_dir=Path("/tmp/rnn-tui-bench-runs"),
        overrides=dict(
            hidden=args.hidden,
            layers=args.layers,
            batch_size=args.batch,
            device="cpu",
            sample_every_s=args.sample_every,
            eval_every=100_000,
            eval_every_minutes=0,
            save_every_minutes=60,
        ),
    )
    share = channel_cpu_per_second(args.viewers, args.sample_every, args.hidden, args.layers)
    print(
        f"channel CPU: {share * 1000:.2f} ms per second of training with {args.viewers} viewers "
        f"({share * 100:.3f} % of one core; upper bound, viewers' decoding included)",
        flush=True,
    )
    ratios = []
    for r in range(args.rounds):
        order = [0, args.viewers] if r % 2 == 0 else [args.viewers, 0]
        got = {}
        for n in order:
            got[n] = one_round(request, args.seconds, n)
        rate0, (rate_v, events) = got[0][0], got[args.viewers]
        ratios.append(rate_v / rate0)
        print(
            f"round {r + 1}: no viewer {rate0:,.0f} chars/s, {args.viewers} viewers {rate_v:,.0f} chars/s "
            f"({events} events received), ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print()
    rows = [
        [
            f"channel CPU per second of training, {args.viewers} viewers (upper bound)",
            f"{share * 100:.3f} % of a core",
            "≤ 1 %",
        ]
    ]
    if ratios:
        rows.insert(
            0,
            [
                f"trainer with {args.viewers} viewers / none ({args.layers}x{args.hidden} B{args.batch})",
                f"{median(ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})",
                "≥ 0.99",
            ],
        )
    print(table(rows, ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
