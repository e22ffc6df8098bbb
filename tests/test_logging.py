"""verbose=True goes through logging: shown on stderr when nothing is configured, else through the program's handlers."""
import logging

import numpy as np

from imgexplain._logging import verbose_log


def _unconfigured_logger(name):
    """A logger that reaches no handler, as in a program that configured no logging (pytest's own
    handlers on the root logger are out of its reach)."""
    logger = logging.getLogger(name)
    logger.propagate = False
    assert not logger.hasHandlers()
    return logger


def test_verbose_messages_reach_stderr_when_logging_is_not_configured(capsys):
    logger = _unconfigured_logger("imgexplain.test.unconfigured")
    with verbose_log(logger, verbose=True) as log:
        log("step %d of %d", 1, 2)
    assert capsys.readouterr().err == "step 1 of 2\n"
    assert logger.level == logging.NOTSET and not logger.handlers  # all undone
    logger.info("after the block")
    assert capsys.readouterr().err == ""


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_verbose_messages_go_to_the_programs_handlers_at_info():
    """As after ``logging.basicConfig(level=logging.WARNING)``: a handler on a logger above, which is at WARNING."""
    configured = logging.getLogger("imgexplain.test.configured")
    configured.setLevel(logging.WARNING)
    handler = _Records()
    configured.addHandler(handler)
    logger = logging.getLogger("imgexplain.test.configured.module")
    try:
        with verbose_log(logger, verbose=True) as log:
            log("step 1")
        logger.info("after the block")
    finally:
        configured.removeHandler(handler)
    assert [(record.name, record.levelno, record.getMessage()) for record in handler.records] == [
        ("imgexplain.test.configured.module", logging.INFO, "step 1")]
    assert logger.level == logging.NOTSET and not logger.handlers


def test_not_verbose_logs_nothing_and_changes_nothing(capsys):
    logger = _unconfigured_logger("imgexplain.test.quiet")
    with verbose_log(logger, verbose=False) as log:
        assert log is None
        assert not logger.handlers
    assert capsys.readouterr().err == ""


def test_anchor_image_reports_its_progress_as_info_records_of_the_anchors_logger(caplog, capsys):
    from imgexplain import AnchorImage

    image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)

    def quadrants(image):
        rows, cols = np.indices(image.shape[:2]) // 8
        return 2 * rows + cols

    def top_left_textured(images):
        textured = images[:, :8, :8].std(axis=(1, 2)).min(axis=1) > 0.01
        return np.stack([~textured, textured], axis=1).astype(float)

    explainer = AnchorImage(top_left_textured, image.shape, segmentation_fn=quadrants, seed=0)
    explainer.explain(image, threshold=0.9, verbose=True)
    progress = [record for record in caplog.records if record.name == "imgexplain.anchors"]
    assert progress and all(record.levelno == logging.INFO for record in progress)
    assert progress[-1].getMessage().startswith("size 1: (0,) precision 1.000")
    assert capsys.readouterr().out == ""  # nothing printed
    caplog.clear()
    explainer.explain(image, threshold=0.9)
    assert not [record for record in caplog.records if record.name == "imgexplain.anchors"]
