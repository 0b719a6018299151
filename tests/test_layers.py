"""The core is usable without any UI: importing it must not pull in textual."""

import subprocess
import sys


def test_core_imports_no_ui():
    code = (
        "import sys\n"
        "import rnn_tui.core.corpus, rnn_tui.core.trainer, rnn_tui.core.session, rnn_tui.core.events\n"
        "import rnn_tui.launch, rnn_tui.headless\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'plotext')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_app_starts_without_torch():
    """The screen appears before torch is imported: torch loads in the trainer's process."""
    code = (
        "import sys\n"
        "from rnn_tui.launch import TrainRequest\n"
        "TrainRequest().check()\n"
        "import rnn_tui.ui.app, rnn_tui.link\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
