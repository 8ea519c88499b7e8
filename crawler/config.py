"""Options from the environment (``REFGRAPH_<OPTION>``) and from a TOML config file.

Precedence, as click applies it: the command line, then the environment, then the config file,
then the built-in default. In the file, top-level keys apply to every command that has such an
option, and a table per command (``[crawl]``, ``[orphans]``...) to that command only::

    db = "refs.db"

    [crawl]
    base_url = "https://edit.example.com"
    concurrency = 32
    endpoints = "media,publications"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

__all__ = ["ConfigError", "ENV_PREFIX", "add_envvars", "load_config", "unknown_envvars"]

ENV_PREFIX = "REFGRAPH_"
# Flags that choose an output format per call: an environment variable would surprise a script.
NOT_FROM_ENV = {"as_json", "as_csv", "help", "resume"}
SECRET_KEYS = {"token", "livingdocs_token", "password"}
PATH_OPTIONS = {"db", "seeds_files", "token_file", "out_path", "write_seeds"}


class ConfigError(ValueError):
    """A config file refgraph cannot use; the message names the file and the key."""


def _option_names(command: click.Command) -> dict[str, click.Option]:
    """key as written in a file or environment (long option name, '_' or '-') -> the option."""
    names = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--"):
                    names[opt[2:].replace("-", "_")] = param
    return names


def _value(option: click.Option, value, base: Path):
    """A repeatable option takes a list (one string means one item); a relative path in the
    file is relative to the file, not to wherever cron happens to start refgraph."""
    values = [value] if option.multiple and isinstance(value, str) else value
    if option.name not in PATH_OPTIONS:
        return values
    fix = lambda v: str(base / v) if isinstance(v, str) and not Path(v).is_absolute() else v  # noqa: E731
    return [fix(v) for v in values] if isinstance(values, list) else fix(values)


def unknown_envvars(group: click.Group, environ: dict[str, str]) -> list[str]:
    """REFGRAPH_* variables that no option reads: a typo there is silently ignored otherwise."""
    known = {"REFGRAPH_CONFIG"} | {p.envvar for cmd in group.commands.values() for p in cmd.params
                                   if isinstance(p.envvar, str)}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def add_envvars(group: click.Group) -> None:
    """Give every option of every command its REFGRAPH_<LONG_NAME> variable, unless it has one."""
    for command in group.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar is None and param.name not in NOT_FROM_ENV:
                long = next((o for o in param.opts if o.startswith("--")), None)
                if long:
                    param.envvar = ENV_PREFIX + long[2:].replace("-", "_").upper()


def load_config(path: str, group: click.Group) -> dict[str, dict]:
    """A click default_map from the TOML file at ``path``."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    shared = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key in (*shared, *(k for t in tables.values() for k in t)):
        if key.replace("-", "_").lower() in SECRET_KEYS:
            raise ConfigError(f"{path}: '{key}' does not belong in a config file; the token comes from "
                              "$LIVINGDOCS_TOKEN or --token-file")
    known = {name: _option_names(cmd) for name, cmd in group.commands.items()}
    for table in tables:
        if table not in known:
            raise ConfigError(f"{path}: [{table}] is not a refgraph command")
    everywhere = set().union(*known.values()) if known else set()
    for key in shared:
        if key.replace("-", "_") not in everywhere:
            raise ConfigError(f"{path}: '{key}' is not an option of any refgraph command")
    default_map = {}
    for name, options in known.items():
        entries = {**shared, **tables.get(name, {})}
        for key in tables.get(name, {}):
            if key.replace("-", "_") not in options:
                raise ConfigError(f"{path}: '{key}' is not an option of refgraph {name}")
        base = Path(path).resolve().parent
        default_map[name] = {options[k.replace("-", "_")].name: _value(options[k.replace("-", "_")], v, base)
                             for k, v in entries.items() if k.replace("-", "_") in options}
    return default_map
