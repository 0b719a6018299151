"""The layers hold: the core imports no UI, and the screens (and `rnn-tui runs`) appear without
torch, which loads in the trainer's process."""

import ast
import subprocess
import sys


def loaded_after(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a fresh interpreter has loaded after running ``imports``."""
    code = (
        "import sys\n"
        f"{imports}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out)


def test_core_imports_no_ui():
    assert loaded_after("import rnn_tui.core.corpus, rnn_tui.core.trainer, rnn_tui.core.session, "
                        "rnn_tui.core.events, rnn_tui.core.wire\nimport rnn_tui.launch, rnn_tui.headless",
                        ("textual", "plotext")) == []


def test_app_starts_without_torch():
    """The screen appears before torch is imported: torch loads in the trainer's process."""
    assert loaded_after("from rnn_tui.launch import TrainRequest\nTrainRequest().check()\n"
                        "import rnn_tui.ui.app, rnn_tui.link", ("torch",)) == []


def test_runs_and_viewers_need_no_torch():
    """`rnn-tui runs` answers at once, and a viewer (attach, serve) never loads torch."""
    assert loaded_after("import rnn_tui.runstate, rnn_tui.viewer, rnn_tui.control, rnn_tui.detached\n"
                        "rnn_tui.runstate.list_runs('runs')", ("torch",)) == []
