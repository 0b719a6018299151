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
import time
from pathlib import Path

from benchmarks.app_cost import MeasuringLink
from benchmarks.common import median, table
from rnn_tui.launch import TrainRequest
from rnn_tui.resources import bundled_corpora
from rnn_tui.runstate import live_trainer


def one_round(request, seconds: float, viewers: int) -> tuple[float, int]:
    """Training chars/s, and the events the viewers received."""
    from rnn_tui.viewer import SocketLink

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
        corpus_file=bundled_corpora()["tinyshakespeare"], runs_dir=Path("/tmp/rnn-tui-bench-runs"),
        overrides=dict(hidden=args.hidden, layers=args.layers, batch_size=args.batch, seq_len=100,
                       device="cpu", sample_every_s=args.sample_every, eval_every=100_000,
                       save_every_minutes=60),
    )
    ratios = []
    for r in range(args.rounds):
        order = [0, args.viewers] if r % 2 == 0 else [args.viewers, 0]
        got = {}
        for n in order:
            got[n] = one_round(request, args.seconds, n)
        rate0, (rate_v, events) = got[0][0], got[args.viewers]
        ratios.append(rate_v / rate0)
        print(f"round {r + 1}: no viewer {rate0:,.0f} chars/s, {args.viewers} viewers {rate_v:,.0f} chars/s "
              f"({events} events received), ratio {ratios[-1]:.3f}", flush=True)
    print()
    print(table([[f"trainer with {args.viewers} viewers / none ({args.layers}x{args.hidden} B{args.batch})",
                  f"{median(ratios):.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})", "≥ 0.99"]],
                ["measure", "value", "target"]))


if __name__ == "__main__":
    main()
