"""What a Luigi run logs: an operator error as one line, the plain modules' lines through luigi.

Why apart from the base task: Luigi formats a failed task's exception as a
traceback before any of our code sees it; turning an `OperatorError` back
into one line, and routing the `pipeline.*` loggers to luigi's handlers, is
logging's job, not a step's.
"""

from __future__ import annotations

import logging

from pipeline.errors import OperatorError, is_disk_full


def _operator_error_names() -> set[str]:
    """Names of `OperatorError` and every subclass loaded so far (for tracebacks luigi has
    already formatted into text)."""
    names, todo = set(), [OperatorError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


class OperatorErrorFilter(logging.Filter):
    """Turn luigi's traceback of an operator error into one line naming the error.

    Luigi logs every failed task with `logger.exception` (and a failed
    `requires()` or `complete()` with the formatted traceback in the message).
    An `OperatorError` already says what is wrong with which file, line,
    setting or service; the traceback only hides it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, OperatorError) or is_disk_full(exc)):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        elif isinstance(record.msg, str) and "Traceback (most recent call last)" in record.msg:
            text = record.getMessage()
            last = text.rstrip().splitlines()[-1]
            if last.split(":", 1)[0].rsplit(".", 1)[-1] in _operator_error_names():
                record.msg = text.split("\n", 1)[0] + " " + last
                record.args = ()
        return True


_FILTER = OperatorErrorFilter()


class ToLuigiInterface(logging.Handler):
    """Hand the plain modules' records (`pipeline.*` loggers) to luigi's interface logger.

    Why: plain code logs under its own module name, knowing nothing of Luigi;
    in a Luigi run, luigi configures only `luigi-interface` (its level from
    `--log-level`, a stream handler; or `[core] logging_conf_file`), so without
    this the package's INFO lines would be dropped. Records go through that
    logger's level, filters (the one-line operator errors) and handlers, and
    on to the root logger when it propagates: each record is emitted once.
    """

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger("luigi-interface")
        if target.isEnabledFor(record.levelno):
            target.handle(record)


_TO_LUIGI = ToLuigiInterface()


def install_error_filter() -> None:
    """Attach the filter to luigi's logger, and route the package's loggers through it, once
    (called when a step is instantiated). A `pipeline` logger configured with handlers of
    its own (a logging config file) is left as configured."""
    logger = logging.getLogger("luigi-interface")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    package = logging.getLogger("pipeline")
    if not package.handlers:
        package.addHandler(_TO_LUIGI)
        package.propagate = False  # reaches the root through luigi-interface, not twice
        if package.level == logging.NOTSET:
            package.setLevel(logging.DEBUG)  # luigi-interface's level decides, when it is set
