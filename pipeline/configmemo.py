"""Configuration sections made once per configuration, not once per question.

Why: luigi resolves every parameter of a `luigi.Config` section each time the
section is instantiated (the command line, then the config file, then the
default, for each parameter) and consults its own instance cache only after
that. The steps ask for their sections often: about 90 times in one shard's
run of the sample world (`[backfill]` alone 32 times), some 30 ms before the
first request. Here a section made with no arguments is kept and handed out
again while the values it was made from are the same ones: the same luigi
command line (the parser instance holding its overrides), the same config
parser object, and the same raw values in the sections its parameters read
(and DEFAULT). A value set or removed in the parser (as the tests do), a
reloaded configuration or another command line makes it again. A section
whose raw values refer to the environment or to other keys (`${VAR}`,
`%(key)s`) is resolved afresh every time, as is any other kind of parser (the
TOML one) and any section asked for with arguments.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from luigi.cmdline_parser import CmdlineParser
from luigi.configuration import get_config
from luigi.task_register import Register


class _NoCommandLine:
    """The key of sections made outside the luigi command line (weakly referenced)."""


_NO_COMMAND_LINE = _NoCommandLine()
# command line -> (its config parser, weakly; {(section class, raw values): section})
_made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_read: dict[type, tuple[str, ...]] = {}


def remembered(cls: type, make: Callable[[], Any] | None = None) -> Any:
    """`cls()` (or `make()`), or the section made before from the same values."""
    make = make or cls
    state = _state(cls)
    if state is None:
        return make()
    parser, values = state
    command_line = CmdlineParser.get_instance() or _NO_COMMAND_LINE
    slot = _made.get(command_line)
    if slot is None or slot[0]() is not parser:  # another parser object: start afresh
        slot = _made[command_line] = (weakref.ref(parser), {})
    sections = slot[1]
    key = (cls, values)
    if key not in sections:
        sections[key] = make()
    return sections[key]


class RememberedSection(Register):
    """Metaclass of the pipeline's sections: `section()` goes through `remembered`."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return super().__call__(*args, **kwargs)
        return remembered(cls, lambda: super(RememberedSection, cls).__call__())


def _state(cls: type) -> tuple[Any, tuple] | None:
    """(the config parser, the raw values `cls` is made from), or None: not to be kept."""
    parser = get_config()
    sections = getattr(parser, "_sections", None)
    defaults = getattr(parser, "_defaults", None)
    if not isinstance(sections, dict) or not isinstance(defaults, dict):
        return None
    values = tuple(tuple(sections.get(name, {}).items()) for name in _sections_read(cls))
    values += (tuple(defaults.items()),)
    for part in values:
        for _, raw in part:
            if isinstance(raw, str) and ("$" in raw or "%" in raw):
                return None
    return parser, values


def _sections_read(cls: type) -> tuple[str, ...]:
    """The config sections `cls`'s parameters are read from: its own, and any `config_path`."""
    if cls not in _read:
        names = {cls.get_task_family()}
        for _, param in cls.get_params():
            path = getattr(param, "_config_path", None)
            if path:
                names.add(path["section"])
        _read[cls] = tuple(sorted(names))
    return _read[cls]
