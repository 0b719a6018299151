"""LossPlot: what a user sees in an 80x24 terminal, and that it stays cheap over long runs."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from textual.app import App, ComposeResult

from rnn_tui.ui.plot_data import Series, downsample_envelope, ema, log_ticks
from rnn_tui.ui.widgets.loss_plot import EMPTY_TEXT, SMOOTHING_LADDER, LossPlot


class PlotApp(App):
    def __init__(self, plot: LossPlot | None = None) -> None:
        super().__init__()
        self.plot = plot or LossPlot()
        self.view_changes: list[str] = []

    def compose(self) -> ComposeResult:
        yield self.plot

    def on_loss_plot_view_changed(self, message: LossPlot.ViewChanged) -> None:
        self.view_changes.append(message.loss_plot.describe())


def curve(steps: np.ndarray, seed: int = 0) -> np.ndarray:
    """A loss curve like a char-LSTM's: ln(65) ≈ 4.2 at step 0, down towards ~1.5, noisy."""
    rng = np.random.default_rng(seed)
    return 1.5 + 2.7 * np.exp(-steps / 300.0) + 0.04 * rng.standard_normal(len(steps))


def _number(label: str) -> float:
    scale = {"k": 1e3, "M": 1e6}.get(label[-1], 1.0)
    return float(label.rstrip("kM")) * scale


def y_ticks(plain: str) -> list[float]:
    """The numbers printed left of the y axis (``1.5┤``)."""
    return [float(m.group(1)) for line in plain.splitlines() if (m := re.match(r"^\s*(-?[\d.]+)┤", line))]


def x_ticks(plain: str) -> list[float]:
    """The numbers printed under the x axis (the line after ``└┬──``)."""
    lines = plain.splitlines()
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    return [_number(tok) for tok in lines[axis + 1].split()]


def shown(plot: LossPlot) -> str:
    """What render() hands to Textual, as plain text."""
    return plot.render().plain


# --------------------------------------------------------------------------- what the user sees


async def test_empty_state_shows_waiting_text_centred():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = shown(app.plot).splitlines()
        row = next(i for i, line in enumerate(lines) if EMPTY_TEXT in line)
        assert 8 <= row <= 14  # vertically centred in 24 rows
        assert lines[row].index(EMPTY_TEXT) >= 20  # horizontally centred in 80 columns
        assert "┤" not in shown(app.plot)  # no empty axes


async def test_curves_axes_and_legend():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        steps = np.arange(0, 1000)
        losses = curve(steps)
        plot.add_train(steps[:600], losses[:600])
        plot.add_train(steps[600:], losses[600:])
        plot.add_val(500, 1.62)
        plot.add_val(999, 1.55)
        plot.redraw()
        await pilot.pause()
        plain = shown(plot)

        for label in ("loss (nats/char)", "train", "ema", "val", "step"):
            assert label in plain, label
        assert "1.550" in plain  # latest validation loss in the legend

        ys = y_ticks(plain)
        assert len(ys) >= 3
        assert min(ys) >= losses.min() - 0.3 and max(ys) <= losses.max() + 0.3
        assert max(ys) >= 3.5 and min(ys) <= 1.7  # the range is used, not just a corner of it

        xs = x_ticks(plain)
        assert len(xs) >= 3
        assert min(xs) == 0 and 800 <= max(xs) <= 1000
        assert xs == sorted(xs)

        assert len(plain.splitlines()) <= 24
        assert all(len(line) <= 80 for line in plain.splitlines())
        assert "●" in plain  # validation markers are drawn


async def test_log_y_toggles_repeatedly_without_errors():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        steps = np.arange(0, 1500)
        plot.add_train(steps, curve(steps))
        plot.add_val(1000, 1.6)
        linear = plot.redraw().plain
        for _ in range(2):
            plot.action_toggle_log_y()
            await pilot.pause()
            for _ in range(3):
                plot.add_train([steps[-1] + 1], [1.5])
                text = plot.redraw().plain
                assert "┤" in text
        assert plot.log_y is False  # toggled twice
        plot.action_toggle_log_y()
        logged = plot.redraw().plain
        assert "log" in logged.splitlines()[0]
        ys = y_ticks(logged)
        assert len(ys) >= 3 and min(ys) >= 1.0 and max(ys) <= 5.0  # real loss values, not log10 values
        assert ys != y_ticks(linear)
        # Zero and negative values cannot go on a log axis: they are skipped, not a crash.
        plot.add_train([2000, 2001], [0.0, -1.0])
        assert "┤" in plot.redraw().plain


async def test_smoothing_ladder_clamps_at_both_ends():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        assert plot.smoothing == 0.9
        seen = []
        for _ in range(len(SMOOTHING_LADDER) + 3):
            plot.action_smoothing_up()
            seen.append(plot.smoothing)
        assert seen[:3] == [0.95, 0.98, 0.99]
        assert plot.smoothing == SMOOTHING_LADDER[-1]
        for _ in range(len(SMOOTHING_LADDER) + 3):
            plot.action_smoothing_down()
        assert plot.smoothing == 0.0
        assert "smooth off" in plot.describe()
        plot.action_smoothing_up()
        assert plot.smoothing == 0.6
        plot.smoothing = 5.0  # out of range values are clamped
        assert plot.smoothing == 0.999
        plot.action_smoothing_up()
        assert plot.smoothing == 0.999
        plot.smoothing = -1
        assert plot.smoothing == 0.0
        await pilot.pause()
        assert app.view_changes  # the app hears about changes, to update its footer


async def test_describe_and_window_toggle():
    app = PlotApp()
    async with app.run_test(size=(80, 24)):
        plot = app.plot
        assert plot.describe() == "robust y · smooth 0.90 · all"
        plot.action_toggle_log_y()
        plot.action_toggle_window()
        plot.action_smoothing_up()
        assert plot.describe() == "log robust y · smooth 0.95 · last 2k steps"
        assert plot.describe(width=34) == "log robust y · ema 0.95 · last 2k"  # the border at 80x24
        plot.action_toggle_y_range()
        assert plot.describe() == "log full y · smooth 0.95 · last 2k steps"
        plot.action_toggle_window()
        assert plot.window == "all"
        with pytest.raises(ValueError):
            plot.window = "everything"


async def test_recent_window_shows_only_recent_steps():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        steps = np.arange(0, 10_000)
        plot.add_train(steps, curve(steps))
        for s in range(0, 10_000, 500):
            plot.add_val(s, 1.6)
        xs_all = x_ticks(plot.redraw().plain)
        assert min(xs_all) == 0 and max(xs_all) >= 8_000

        plot.action_toggle_window()
        await pilot.pause()
        plain = shown(plot)
        xs = x_ticks(plain)
        assert min(xs) >= 10_000 - plot.recent_steps - 1
        assert max(xs) <= 10_000 and max(xs) >= 9_500
        # Only the flat end of the curve is in view: the y axis zooms in on it.
        ys = y_ticks(plain)
        assert max(ys) < 2.0


async def test_data_is_drawn_at_most_on_the_timer_not_on_every_add():
    class SlowPlot(LossPlot):
        REDRAW_INTERVAL = 3600  # the timer never fires during the test

    app = PlotApp(SlowPlot())
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        await pilot.pause()
        builds = plot.render_count
        for i in range(50):
            plot.add_train([i], [4.0 - i * 0.01])
            await pilot.pause()
        assert plot.render_count == builds  # 50 adds, no chart build
        assert EMPTY_TEXT in shown(plot)  # still the cached picture
        plot._tick()  # what the timer does
        await pilot.pause()
        assert plot.render_count == builds + 1
        assert "train" in shown(plot)
        plot._tick()  # nothing new: no rebuild
        await pilot.pause()
        assert plot.render_count == builds + 1
        plot.clear_history()
        await pilot.pause()
        assert EMPTY_TEXT in shown(plot)


async def test_no_color_stays_readable(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = PlotApp()
    async with app.run_test(size=(80, 24)):
        assert app.no_color
        plot = app.plot
        steps = np.arange(0, 800)
        plot.add_train(steps, curve(steps))
        plot.add_val(700, 1.6)
        plain = plot.redraw().plain
        # The three series differ by glyph, not only by colour: braille raw, block EMA, dots for val.
        assert re.search("[\u2801-\u28ff]", plain)
        assert re.search("[▀▄▌▐▖▗▘▝▚▞▙▛▜▟]", plain)
        assert "●" in plain and "val" in plain and "ema" in plain


async def test_tiny_widget_does_not_crash():
    app = PlotApp()
    async with app.run_test(size=(20, 4)) as pilot:
        plot = app.plot
        plot.add_train([1, 2, 3], [4.0, 3.0, 2.0])
        plot.add_val(3, 2.5)
        plain = plot.redraw().plain
        assert "val" in plain or "train" in plain
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert "┤" in shown(plot)  # redrawn for the new size at once


async def test_single_point_and_nonfinite_losses():
    app = PlotApp()
    async with app.run_test(size=(80, 24)):
        plot = app.plot
        plot.add_train([10], [3.0])
        assert "┤" in plot.redraw().plain
        plot.add_train([11, 12, 13], [float("nan"), float("inf"), 2.9])
        plot.add_val(12, float("nan"))
        assert plot.nonfinite_dropped == 3
        assert plot.train_points == 2
        assert "┤" in plot.redraw().plain
        with pytest.raises(ValueError):
            plot.add_train([1, 2], [1.0])


# --------------------------------------------------------------------------- long runs


async def test_300k_points_stay_bounded_and_render_fast():
    app = PlotApp()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.plot
        chunk = 1_000
        for start in range(0, 300_000, chunk):  # as the app feeds it, a chunk at a time
            steps = np.arange(start, start + chunk)
            plot.add_train(steps, 1.5 + 2.7 * np.exp(-steps / 30_000.0))
        for s in range(0, 300_000, 2_000):
            plot.add_val(s, 1.6)
        assert plot.train_points == 300_000
        assert plot.stored_points <= LossPlot.MAX_POINTS
        assert plot.stored_bytes < 12 * 1024 * 1024

        plot.redraw()  # first build computes the EMA over the stored history
        times = []
        for i in range(5):
            plot.add_train([300_000 + i], [1.5])
            start = time.perf_counter()
            plain = plot.redraw().plain
            times.append(time.perf_counter() - start)
        # ~10-35 ms on a quiet 2-core machine; generous for a busy CI box.
        assert min(times) < 0.25, times
        xs = x_ticks(plain)
        assert max(xs) >= 250_000 and min(xs) == 0

        # Twice as long again: memory stays flat.
        stored, nbytes = plot.stored_points, plot.stored_bytes
        for start in range(300_000, 600_000, 10_000):
            steps = np.arange(start, start + 10_000)
            plot.add_train(steps, np.full(10_000, 1.5))
        assert plot.stored_points <= LossPlot.MAX_POINTS
        assert plot.stored_bytes <= max(nbytes, 12 * 1024 * 1024)
        assert stored > 0
        await pilot.pause()


# --------------------------------------------------------------------------- the pieces


def test_ema_matches_the_loop():
    rng = np.random.default_rng(1)
    y = rng.random(5_000) + 1.0
    for w in (0.0, 0.3, 0.6, 0.9, 0.99, 0.999):
        expected = np.empty_like(y)
        s = y[0]
        for i, v in enumerate(y):
            s = w * s + (1 - w) * v
            expected[i] = s
        np.testing.assert_allclose(ema(y, w), expected, rtol=1e-9)
        # Extending from a previous value gives the same as one pass.
        head = ema(y[:1234], w)
        np.testing.assert_allclose(np.concatenate([head, ema(y[1234:], w, head[-1])]), expected, rtol=1e-9)


def test_series_halving_keeps_uniform_resolution_and_the_mean():
    s = Series(cap=1000)
    x = np.arange(10_001, dtype=float)
    y = np.sin(x / 100.0) + 2.0
    for i in range(0, len(x), 37):
        s.extend(x[i : i + 37], y[i : i + 37])
    assert s.total == len(x)
    assert s.n <= 1000
    assert s.stride in (16, 32)  # 10k points in <= 1000 stored
    # Stored points are averages of `stride` consecutive raw points.
    assert np.allclose(np.diff(s.x), s.stride)
    total_y = s.y.sum() * s.stride + (s.pending()[1] * (len(x) - s.n * s.stride) if s.pending() else 0.0)
    assert total_y == pytest.approx(y.sum(), rel=1e-9)


def test_points_at_earlier_steps_replace_the_later_ones():
    s = Series(cap=1000)
    s.extend(np.array([5.0, 6.0, 7.0]), np.array([1.0, 1.0, 1.0]))
    s.truncate_from(6.0)  # e.g. a rollback to step 5 trains 6.. again
    s.extend(np.array([6.0, 7.0]), np.array([2.0, 2.0]))
    xs, ys = s.window(0, 10)
    assert list(xs) == [5.0, 6.0, 7.0] and list(ys) == [1.0, 2.0, 2.0]
    assert s.first_x() == 5.0 and s.last_x() == 7.0


def test_envelope_keeps_spikes():
    x = np.arange(100_000, dtype=float)
    y = np.full_like(x, 2.0)
    y[54_321] = 9.0  # a loss spike must still show after downsampling
    dx, dy = downsample_envelope(x, y, 0, x[-1], 150)
    assert len(dx) <= 300
    assert dy.max() == 9.0 and dy.min() == 2.0


def test_log_ticks_are_round_values():
    import math

    positions, labels = log_ticks(math.log10(1.3), math.log10(4.3), 5)
    values = [float(v) for v in labels]
    assert {1.5, 2.0, 3.0, 4.0} <= set(values)
    assert all(abs(10**p - v) < 1e-9 for p, v in zip(positions, values))
    positions, labels = log_ticks(-2, 1, 5)  # three decades
    assert "0.01" in labels and "1" in labels and "10" in labels


def test_steps_trained_again_replace_the_old_points():
    plot = LossPlot()
    plot.add_train(list(range(1, 101)), [3.0] * 100)
    plot.add_val(50, 2.9)
    plot.add_val(100, 2.8)
    # a NaN at step 100: the trainer went back to step 60 and trains 61.. again, at a lower rate
    plot.add_train(list(range(61, 71)), [2.0] * 10)
    xs, ys = plot._train.window(0, 1000)
    assert list(xs) == list(range(1, 71)) and list(ys[-10:]) == [2.0] * 10
    vx, _ = plot._val.window(0, 1000)
    assert list(vx) == [50.0]  # the evaluation at step 100 belonged to the abandoned stretch


async def test_the_y_axis_ignores_the_first_steps_outliers_and_y_shows_the_whole_range():
    """After a minute at 80x24 the first steps' loss (~4.4) must not flatten the rest of the
    curve (TensorBoard's "ignore outliers in chart scaling"); `y` shows every point."""
    app = PlotApp()
    async with app.run_test(size=(38, 9)) as pilot:  # the loss panel's inside at 80x24
        plot = app.plot
        steps = np.arange(1, 401)
        rng = np.random.default_rng(0)
        losses = 1.7 + 2.7 * np.exp(-steps / 40.0) + 0.03 * rng.standard_normal(len(steps))
        plot.add_train(steps, losses)
        plot.add_val(250, 1.95)
        robust = plot.redraw().plain
        ys = y_ticks(robust)
        assert len(ys) >= 2 and max(ys) < 3.0, robust  # not up to 4.4
        assert min(ys) <= 2.0
        plot.action_toggle_y_range()
        await pilot.pause()
        whole = plot.redraw().plain
        assert max(y_ticks(whole)) >= 4.0, whole
        assert plot.y_range == "all" and "full y" in plot.describe()
        assert app.view_changes  # the app hears of it and updates the subtitle


async def test_x_ticks_are_whole_steps_at_the_start():
    app = PlotApp()
    async with app.run_test(size=(60, 16)):
        plot = app.plot
        plot.add_train([1], [4.2])
        xs = x_ticks(plot.redraw().plain)
        assert xs == [1], xs  # not 0.6 0.8 1.0 1.2 1.4
        plot.add_train([2, 3], [4.1, 4.0])
        xs = x_ticks(plot.redraw().plain)
        assert xs and all(x == int(x) for x in xs) and set(xs) <= {1, 2, 3}, xs
