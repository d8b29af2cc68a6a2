"""Configuration sections made once per configuration, not once per question.

Why: luigi resolves every parameter of a `luigi.Config` section each time the
section is instantiated (the command line, then the config file, then the
default, for each parameter) and consults its own instance cache only after
that. The steps ask for their sections often: about 90 times in one shard's
run of the sample world (`[backfill]` alone 32 times), some 30 ms before the
first request. Here a section made with no arguments is kept and handed out
again while what it is made from is the same: the values its parameters were
given on the luigi command line, and the raw values of the config sections they
read (DEFAULT's included). A value changed anywhere (set or removed in the
parser, as the tests do; rewritten in the command line's parsed arguments, as
the run's manifest does; a reloaded file; another command line) makes it again.
A section whose raw values refer to the environment or to other keys
(`${VAR}`, `%(key)s`) is resolved afresh every time, and so is any section asked
for with arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from luigi.cmdline_parser import CmdlineParser
from luigi.configuration import get_config
from luigi.task_register import Register

# section class -> (what it was made from, the section): one slot each, replaced on change
_made: dict[type, tuple[tuple, Any]] = {}
_read: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def remembered(cls: type, make: Callable[[], Any] | None = None) -> Any:
    """`cls()` (or `make()`), or the section made before from the same values."""
    make = make or cls
    key = _made_from(cls)
    if key is None:
        return make()
    kept = _made.get(cls)
    if kept is not None and kept[0] == key:
        return kept[1]
    section = make()
    _made[cls] = (key, section)
    return section


class RememberedSection(Register):
    """Metaclass of the pipeline's sections: `section()` goes through `remembered`."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return super().__call__(*args, **kwargs)
        return remembered(cls, lambda: super(RememberedSection, cls).__call__())


def raw_section(parser: Any, family: str) -> tuple:
    """The raw (uninterpolated) values of a config section as given, DEFAULT's included;
    `()` when there is no such section (luigi then reads no value from it)."""
    return tuple(parser.items(family, raw=True)) if parser.has_section(family) else ()


def _made_from(cls: type) -> tuple | None:
    """What `cls()` would be made from (command-line values, raw config values), or None
    when a value is resolved against something else (the environment, other keys)."""
    sections, dests = _inputs(cls)
    parser = get_config()
    raw = tuple(raw_section(parser, name) for name in sections)
    for values in raw:
        for _, value in values:
            if isinstance(value, str) and ("$" in value or "%" in value):
                return None
    command_line = CmdlineParser.get_instance()
    given = None if command_line is None else tuple(
        getattr(command_line.known_args, dest, None) for dest in dests)
    return given, raw


def _inputs(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The config sections `cls`'s parameters are read from (its own, and any `config_path`)
    and their destinations in the command line's parsed arguments (luigi's names)."""
    if cls not in _read:
        family = cls.get_task_family()
        params = cls.get_params()
        sections = {family} | {param._config_path["section"] for _, param in params
                               if getattr(param, "_config_path", None)}
        _read[cls] = (tuple(sorted(sections)),
                      tuple(param._parser_global_dest(name, family) for name, param in params))
    return _read[cls]
