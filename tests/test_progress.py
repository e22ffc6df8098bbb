"""Progress where no terminal is: log lines every few seconds with known counts, rates and ETAs (a fake clock),
and in a Jupyter kernel without ipywidgets one line refreshed in place."""
import io
import sys
import types

from imgexplain.progress import LogProgress, progress_bar


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_without_a_terminal_a_line_every_few_seconds_gives_the_count_the_rate_and_the_eta():
    clock, log = Clock(), io.StringIO()
    with LogProgress(100, "explaining", "image", log, every=5, clock=clock) as progress:
        clock.now += 4
        progress.update(8)
        assert log.getvalue() == ""  # 4 s: too soon for a line
        clock.now += 1
        progress.update(2)  # 10 images in 5 s: 2 an image a second, 90 left
        clock.now += 60
        progress.update(10)  # 20 in 65 s, 80 left: 260 s
        clock.now += 1
        progress.set_postfix_str("anchor round 3")  # 1 s after the last line: kept for the next
        clock.now += 4
        progress.update(0)
    assert log.getvalue().splitlines() == [
        "explaining: 10/100 images (10 %), 2.00 images/s, ETA 45 s",
        "explaining: 20/100 images (20 %), 0.31 images/s, ETA 4 min 20 s",
        "explaining: 20/100 images (20 %), 0.29 images/s, ETA 4 min 40 s, anchor round 3",
    ]  # and none at the end: the last line said it


def test_a_long_run_s_eta_is_in_hours_and_the_end_has_its_line_without_an_eta():
    clock, log = Clock(), io.StringIO()
    progress = LogProgress(10_000, "explaining", "image", log, every=5, clock=clock)
    clock.now += 10
    progress.update(4)  # 0.4 an image a second: 9,996 left, 24,990 s
    clock.now += 2
    progress.update(9_996)  # 2 s after the last line: none yet
    progress.close()
    assert log.getvalue().splitlines() == ["explaining: 4/10000 images (0 %), 0.40 images/s, ETA 6 h 56 min",
                                           "explaining: 10000/10000 images (100 %), 833.33 images/s"]


def test_in_jupyter_without_ipywidgets_progress_is_one_line_refreshed_in_place(monkeypatch):
    kernel = types.SimpleNamespace(config={"IPKernelApp": {"connection_file": "kernel-1.json"}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed: importing it fails
    cell_output = io.StringIO()  # a kernel's stderr is no terminal
    with progress_bar(3, "explaining", stream=cell_output) as bar:
        for _ in range(3):
            bar.update()
    text = cell_output.getvalue()
    assert text.startswith("\rexplaining:   0%") and text.endswith("\n") and text.count("\n") == 1
    assert text.rsplit("\r", 1)[1].startswith("explaining: 100%") and " 3/3 [" in text.rsplit("\r", 1)[1]


def test_outside_jupyter_and_a_terminal_progress_is_log_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))  # plain Python
    assert isinstance(progress_bar(3, "explaining", stream=io.StringIO()), LogProgress)
