"""The floors hold at run time too: the core loads no UI, and the screens, `rnn-tui runs` and the
viewers appear without torch, which loads only in the trainer's process. (The import graph itself,
function-level imports included, is checked by import-linter: see pyproject.toml.)"""

import ast
import subprocess
import sys


def loaded_after(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a fresh interpreter has loaded after running ``imports``."""
    code = f"import sys\n{imports}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r}))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out)


def test_core_and_hosts_load_no_ui():
    assert (
        loaded_after(
            "import rnn_tui.core.trainer, rnn_tui.core.session, rnn_tui.remote.wire\n"
            "import rnn_tui.host.serve, rnn_tui.host.headless, rnn_tui.host.detached",
            ("textual", "plotext", "textual_serve"),
        )
        == []
    )


def test_app_starts_without_torch():
    """The screen appears before torch is imported: torch loads in the trainer's process."""
    assert (
        loaded_after(
            "from rnn_tui.host.request import TrainRequest\nTrainRequest().check()\n"
            "import rnn_tui.ui.app, rnn_tui.ui.runner, rnn_tui.host.links",
            ("torch",),
        )
        == []
    )


def test_runs_and_viewers_need_no_torch():
    """`rnn-tui runs` answers at once, and a viewer (attach, serve) never loads torch."""
    assert (
        loaded_after(
            "import rnn_tui.remote.status, rnn_tui.remote.client, rnn_tui.remote.server\n"
            "import rnn_tui.host.detached, rnn_tui.ui.web\n"
            "rnn_tui.remote.status.list_runs('runs')",
            ("torch",),
        )
        == []
    )
