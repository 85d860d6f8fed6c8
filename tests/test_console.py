"""`run_logging` leaves the `blogml` logger as it found it, so tests reading log records
(caplog, which listens on the root logger) do not depend on whether a run came first."""

from __future__ import annotations

import logging

import pytest

from blogml.runners.console import run_logging

LOGGER = logging.getLogger("blogml")


@pytest.fixture
def pristine_logger():
    """The `blogml` logger as it was before the test, put back afterwards whatever happens."""
    saved = LOGGER.level, LOGGER.propagate, list(LOGGER.handlers)
    yield LOGGER
    LOGGER.setLevel(saved[0])
    LOGGER.propagate = saved[1]
    LOGGER.handlers[:] = saved[2]


def test_a_run_routes_records_to_its_log_only_and_then_caplog_hears_them_again(
        tmp_path, pristine_logger, caplog):
    pristine_logger.setLevel(logging.NOTSET)
    pristine_logger.propagate = True
    handlers = list(pristine_logger.handlers)
    caplog.set_level(logging.INFO)

    with run_logging(tmp_path / "train.log") as log:
        assert log is pristine_logger
        assert log.level == logging.INFO and log.propagate is False
        log.info("inside the run")
    assert "inside the run" in (tmp_path / "train.log").read_text()
    assert "inside the run" not in caplog.messages  # not propagated during the run

    assert pristine_logger.propagate is True
    assert pristine_logger.level == logging.NOTSET
    assert pristine_logger.handlers == handlers
    logging.getLogger("blogml.models").warning("after the run")
    assert caplog.messages == ["after the run"]
    assert "after the run" not in (tmp_path / "train.log").read_text()


def test_the_previous_settings_come_back_even_when_the_run_raises(tmp_path, pristine_logger):
    own = logging.NullHandler()
    pristine_logger.setLevel(logging.WARNING)
    pristine_logger.propagate = False  # a setting the caller made is kept, not forced on
    pristine_logger.handlers[:] = [own]

    with pytest.raises(RuntimeError, match="boom"):
        with run_logging(tmp_path / "train.log"):
            raise RuntimeError("boom")
    assert (pristine_logger.level, pristine_logger.propagate) == (logging.WARNING, False)
    assert pristine_logger.handlers == [own]

    pristine_logger.propagate = True
    with pytest.raises(RuntimeError, match="boom"):
        with run_logging(tmp_path / "train.log"):
            raise RuntimeError("boom")
    assert pristine_logger.propagate is True


def test_python_warnings_during_a_run_reach_train_log_and_the_old_printer_comes_back(
        tmp_path, pristine_logger):
    import warnings

    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with run_logging(tmp_path / "train.log"):
            warnings.warn("a Keras deprecation", UserWarning, stacklevel=1)
        assert warnings.showwarning is before
    text = (tmp_path / "train.log").read_text()
    assert "WARNING" in text and "UserWarning: a Keras deprecation" in text
