"""The settings framework: one field table per service gives its flags, its environment, validation and docs.

A service declares a `Table` of `Field`s (name, variable, flag, parser, default, help, check). From it the
service's entry point adds the argparse flags, reads the environment mapping it is handed (flags win, an
empty variable counts as unset), validates once — every message names the flag and the variable — and
builds the service's frozen settings dataclass. The docs' settings tables and `sensor.env.example` are
generated from the same tables (`markdown_table`, `env_example`). Every console script takes `--version`
(`add_version`), and paths are checked before anything runs (`writable_dir`, `writable_file`,
`existing_parent`), so a bad path is a one-line error, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Parser = Callable[[str], Any]
Check = Callable[[Any], "str | None"]

PACKAGE = "sensor-box"
# Kernel filesystems that hold no files of ours: a data folder there fails at the first write.
VIRTUAL_FS = frozenset({"proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
                        "configfs", "pstore", "bpf", "mqueue", "hugetlbfs", "fusectl", "binfmt_misc"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names its flag and variable."""


# --- parsers: text → value, ValueError with a short reason ---------------------------------------------


def text(raw: str) -> str:
    """Text as given (a delimiter may be a space)."""
    return raw


def stripped(raw: str) -> str:
    """Text without surrounding blanks."""
    return raw.strip()


def integer(raw: str) -> int:
    """A whole number."""
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def number(raw: str) -> float:
    """A number (seconds, rates, percentages)."""
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None


def boolean(raw: str) -> bool:
    """`1/0`, `true/false`, `yes/no`, `on/off` (any case)."""
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def size(raw: str) -> int:
    """A byte size such as ``8388608``, ``512M`` or ``2GiB``."""
    m = _SIZE_RE.match(raw)
    if not m:
        raise ValueError("not a size (use e.g. 500M, 2G or a byte count)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])


def log_level(raw: str) -> str:
    """A logging level name, upper-cased."""
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
    return level


def path(raw: str) -> Path:
    """A filesystem path."""
    return Path(raw.strip())


def words(raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks and empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def one_of(*choices: str) -> Parser:
    """A parser accepting exactly one of `choices`."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return raw

    return parse


# --- checks: value → problem or None -------------------------------------------------------------------


def at_least(low: float) -> Check:
    """The value must be >= low."""
    return lambda v: None if v >= low else f"must be >= {low} (got {v})"


def above(low: float) -> Check:
    """The value must be > low."""
    return lambda v: None if v > low else f"must be > {low} (got {v})"


def between(low: float, high: float) -> Check:
    """The value must lie in low..high."""
    return lambda v: None if low <= v <= high else f"expected {low}..{high} (got {v})"


def known_level(v: str) -> str | None:
    """The value must name a logging level."""
    return None if str(v).upper() in LOG_LEVELS else f"{v!r} is not a logging level"


def within(*choices: Any) -> Check:
    """The value must be one of `choices`."""
    return lambda v: None if v in choices else f"{v!r}; choose one of {', '.join(map(str, choices))}"


def _mount_type(p: Path) -> str:
    """The filesystem type of the mount holding `p` (longest mount point that is a prefix), '' if unknown."""
    best, fstype = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1].replace("\\040", " ")
                inside = str(p) == point or str(p).startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, fstype = point, parts[2]
    except OSError:  # no /proc (not Linux): nothing to say
        return ""
    return fstype


def _nearest_existing(p: Path) -> Path:
    """`p` itself or its closest ancestor that exists."""
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def writable_dir(value: Path) -> str | None:
    """A folder we will write into: a directory (or creatable as one), writable, on a real filesystem."""
    p = Path(os.path.abspath(Path(value).expanduser()))
    fstype = _mount_type(p)
    if fstype in VIRTUAL_FS:
        return f"{p} is on the kernel's {fstype} filesystem, which cannot hold files: choose a folder on a disk"
    if p.exists() and not p.is_dir():
        return f"{p} is not a directory"
    base = _nearest_existing(p)
    if not base.is_dir():
        return f"{p} cannot be created: {base} is not a directory"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{p} is not writable" if base == p else f"{p} cannot be created: {base} is not writable"
    return None


def writable_file(value: Path) -> str | None:
    """A file we will write (its folder is created if need be): not a folder, its folder writable."""
    p = Path(os.path.abspath(Path(value).expanduser()))
    if p.is_dir():
        return f"{p} is a directory, not a file"
    problem = writable_dir(p.parent)
    return None if problem is None else f"cannot write {p}: {problem}"


def existing_parent(value: Path) -> str | None:
    """A file or link to create: its folder must exist already (it is not created for you) and be writable."""
    parent = Path(os.path.abspath(Path(value).expanduser())).parent
    if not parent.exists():
        return f"folder {parent} does not exist (it is not created for you)"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"folder {parent} is not writable"
    return None


# --- --version -------------------------------------------------------------------------------------------


def version() -> str:
    """The installed package's version (a source tree never installed says so)."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0.1.0+unknown"


class _VersionAction(argparse.Action):
    """Print 'PROG VERSION' and exit; the version is looked up only when asked (it costs a metadata scan)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog} {version()}")  # to stdout, as argparse's own version action does
        parser.exit()


def add_version(parser: argparse.ArgumentParser) -> None:
    """`--version`: print 'PROG VERSION' and exit 0 (every console script has it)."""
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")


# --- the table -------------------------------------------------------------------------------------------

_UNSET: Any = object()


@dataclasses.dataclass(frozen=True)
class Field:
    """One setting: its names, how to parse and check it, its default and its help (Markdown)."""

    name: str
    env: str | None = None
    flag: str | None = None
    parse: Parser = text
    default: Any = _UNSET  # unset: the settings dataclass's default
    help: str = ""
    check: Check | None = None
    shown_default: str | None = None  # the docs' text for a default that is computed or needs words
    also: tuple[str, ...] = ()  # further variables read, in order, when `env` is unset
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    switch: bool = False  # a flag without a value (store_true)
    external: bool = False  # read by a library (boto3), listed in the docs only

    @property
    def names(self) -> str:
        """'--flag / VARIABLE' (whichever exist), for messages."""
        return " / ".join(n for n in (self.flag, self.env) if n) or self.name

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable read for this setting, first wins."""
        return ((self.env,) if self.env else ()) + self.also


class Table:
    """A service's settings: the field table, the dataclass it builds and the error it raises."""

    def __init__(self, service: str, fields: Sequence[Field], model: type | None = None,
                 error: type[SettingsError] = SettingsError) -> None:
        self.service = service
        self.fields = tuple(fields)
        self.model = model
        self.error = error
        self._by_name = {f.name: f for f in self.fields if not f.external}

    def field(self, name: str) -> Field:
        """The field called `name`."""
        return self._by_name[name]

    def default(self, f: Field) -> Any:
        """A field's default: its own, else the dataclass's (None when there is none)."""
        if f.default is not _UNSET:
            return f.default
        spec = getattr(self.model, "__dataclass_fields__", {}).get(f.name)
        if spec is None:
            return None
        if spec.default is not dataclasses.MISSING:
            return spec.default
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return None

    # --- the command line

    def add_arguments(self, parser: argparse.ArgumentParser | Any, names: Iterable[str] | None = None) -> None:
        """Declare the flags (of `names`, else all) on a parser; unset flags stay None for the environment."""
        wanted = set(names) if names is not None else None
        for f in self.fields:
            if f.flag is None or f.external or (wanted is not None and f.name not in wanted):
                continue
            help_text = cli_help(f, self.default_text(f))
            if f.switch:
                parser.add_argument(f.flag, dest=f.name, action="store_true", default=None, help=help_text)
            else:
                parser.add_argument(f.flag, dest=f.name, default=None,
                                    metavar=f.metavar or (None if f.choices else f.name.rsplit("_", 1)[-1].upper()),
                                    choices=f.choices or None, help=help_text)

    def epilog(self) -> str:
        """The 'environment' section of --help: every variable and what it sets."""
        lines = ["environment (flags override):"]
        for f in self.fields:
            if f.variables:
                lines.append(f"  {', '.join(f.variables)}")
                lines += textwrap.wrap(plain(f.help), 96, initial_indent=" " * 6, subsequent_indent=" " * 6)
        return "\n".join(lines)

    # --- reading and validating

    def read(self, args: argparse.Namespace | None, env: Mapping[str, str], fill: bool = False) -> dict[str, Any]:
        """Parsed values of the settings given by flag (first) or environment; with `fill`, defaults too."""
        values: dict[str, Any] = {}
        for f in self.fields:
            if f.external:
                continue
            given = getattr(args, f.name, None) if args is not None else None
            if given is not None:
                values[f.name] = self._parse(f, given, f.flag or f.name, from_env=False)
                continue
            for var in f.variables:
                raw = env.get(var)
                # Empty means unset; so do blanks, except for raw text (a delimiter may be a space).
                if raw is not None and (raw.strip() if f.parse is not text else raw) != "":
                    values[f.name] = self._parse(f, raw, var, from_env=True)
                    break
            else:
                if fill:
                    values[f.name] = self.default(f)
        return values

    def _parse(self, f: Field, raw: Any, source: str, from_env: bool) -> Any:
        if not isinstance(raw, str):  # a switch, or a value a library caller passed already typed
            return raw
        try:
            return f.parse(raw)
        except ValueError as err:
            if from_env:
                other = f" (flag {f.flag})" if f.flag else ""
                raise self.error(f"{source}={raw!r}: {err}{other}") from err
            other = f" (variable {f.env})" if f.env else ""
            raise self.error(f"{source}: {err} (got {raw!r}){other}") from err

    def problems(self, obj: Any) -> list[str]:
        """Every field check that fails on a built settings object, each naming flag and variable."""
        found = []
        for f in self.fields:
            value = getattr(obj, f.name, None)
            if f.check is not None and value is not None:
                problem = f.check(value)
                if problem:
                    found.append(f"{f.names}: {problem}")
        return found

    def validate(self, obj: Any) -> None:
        """Raise the table's error (one line, all problems) if any field check fails."""
        found = self.problems(obj)
        if found:
            raise self.error("; ".join(found))

    def fail(self, name: str, problem: str) -> SettingsError:
        """An error about one field, naming its flag and variable (for a builder's cross-field rules)."""
        return self.error(f"{self.field(name).names}: {problem}")

    def build(self, args: argparse.Namespace | None, env: Mapping[str, str], **extra: Any) -> Any:
        """Read, construct the settings dataclass (its own defaults fill the rest) and validate it."""
        assert self.model is not None, "a table without a model only reads"
        obj = self.model(**{**self.read(args, env), **extra})
        self.validate(obj)
        return obj

    # --- the docs

    def default_text(self, f: Field) -> str:
        """A default as the docs show it (Markdown)."""
        if f.shown_default is not None:
            return f.shown_default
        value = None if f.external else self.default(f)
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, (tuple, list)):
            return f"`{','.join(map(str, value))}`" if value else "none"
        if isinstance(value, str):
            return f"`{value}`" if value else "empty"
        if isinstance(value, Path):
            return f"`{value}`"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


def plain(markdown: str) -> str:
    """Markdown help as plain text (for --help and comments)."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown).replace("`", "").replace("**", "")


def cli_help(f: Field, default: str) -> str:
    """A flag's --help line: meaning, default and variable (argparse needs % doubled)."""
    parts = [plain(f.help)]
    if not default.startswith("—") and not f.switch:
        parts.append(f"(default {plain(default)})")
    if f.env:
        parts.append(f"[env {f.env}]")
    return " ".join(p for p in parts if p).replace("%", "%%")


def markdown_table(table: Table) -> str:
    """The service's settings as the docs' Markdown table (env, flag, default, meaning)."""
    lines = ["| env | flag | default | meaning |", "|---|---|---|---|"]
    for f in table.fields:
        env = f"`{f.env}`" if f.env else "—"
        if f.also:
            env += " (else " + ", then ".join(f"`{v}`" for v in f.also) + ")"
        flag = f"`{f.flag}`" if f.flag else "—"
        lines.append(f"| {env} | {flag} | {table.default_text(f)} | {f.help} |")
    return "\n".join(lines)


def env_example(tables: Sequence[Table]) -> str:
    """`sensor.env.example`: every variable of every service, commented out, with help and defaults."""
    users: dict[str, list[tuple[Table, Field]]] = {}
    for table in tables:
        for f in table.fields:
            for var in f.variables:
                users.setdefault(var, []).append((table, f))
    shared = [var for var, uses in users.items() if len({t.service for t, _ in uses}) > 1]
    out = [
        "# sensor.env.example: every setting of the sensor-box services, generated from their field tables",
        "# (python -m devtools.settings_docs). Lines are commented out: uncomment a line to change a default.",
        "# Booleans take 1/0, true/false, yes/no, on/off. An empty value counts as unset.",
        "",
        "# ---- box-wide: read by several services ----",
    ]
    for var in shared:
        out.append("")
        for table, f in users[var]:
            out.append(f"# {table.service}: {plain(f.help)} (default: {plain(table.default_text(f))})")
        out.append(f"#{var}={_example_value(*users[var][0])}")
    for table in tables:
        out += ["", f"# ---- {table.service} ----"]
        for f in table.fields:
            for var in f.variables:
                if var in shared:
                    continue
                flag = f"; flag {f.flag}" if f.flag else ""
                out += ["", f"# {plain(f.help)} (default: {plain(table.default_text(f))}{flag})",
                        f"#{var}={_example_value(table, f)}"]
    return "\n".join(out) + "\n"


def _example_value(table: Table, f: Field) -> str:
    """The value shown after `VAR=` in the example: the default when it is a plain value."""
    if f.shown_default is not None or f.external:
        return ""
    value = table.default(f)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
