"""Ownership: no module outside the kernel spells a name, key, field or time format of a shared contract.

Every string constant in the code of the services (docstrings aside: they may name what they describe) is
checked against the contract literals below; each may appear only in ``kernel/``. A service that needs one
imports the kernel's name for it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("reader", "uploader", "web", "analysis", "simulator")

# File and folder names of the data directory, object and state files, time formats, document fields.
CONTRACT_LITERALS = (
    "session.json", "rejects.txt", "markers.jsonl", "envelope.parquet", ".envelope.parquet", ".touched", ".part", ".status", ".upload", ".reserve", ".lock", "batch-",
    ".stats.json", ".uploader.pid", ".uploader.log", ".evicting-", "reader-",
    "host_time", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H%M%S",
    "csv.gz", "application/vnd.apache.parquet", "source-sha256",
    "first_time", "last_time", "first_seq", "last_seq", "seq_gaps", "seq_missing",
    "object_key", "object_file", "object_size", "object_sha256", "object_md5", "batch_count",
    "manifest_key", "manifest_sha256", "touched_at", "verified_at",
    "backlog_batches", "backlog_bytes", "last_upload", "frames_dropped", "lost_lines", "disk_error",
    "used_bytes", "total_bytes", "buffer_overflow",
)
# Names once guessed by a reader but never written by anyone: they must not come back, not even in the kernel.
NEVER_WRITTEN = ("first_host_time", "last_host_time")
# Literals a module outside the kernel may still hold, each with the reason. Keep this short.
ALLOWED = {
    # The summary command's own JSON output (not the uploaded manifest's field of the same name).
    "analysis/commands.py": ("seq_gaps",),
}


def _pattern(literal: str) -> re.Pattern[str]:
    """The literal, not as part of a longer word or flag (".upload" is not in ".uploader.pid", "batch-" not in
    "--batch-lines")."""
    head = r"(?<![A-Za-z0-9_-])" if literal[0].isalnum() or literal[0] == "_" else ""
    tail = r"(?![A-Za-z0-9_])" if literal[-1].isalnum() or literal[-1] == "_" else ""
    return re.compile(head + re.escape(literal) + tail)


PATTERNS = {lit: _pattern(lit) for lit in CONTRACT_LITERALS}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module and its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def contract_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every contract literal in a module's string constants (docstrings aside)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found += [(node.lineno, lit) for lit, rx in PATTERNS.items() if rx.search(node.value)]
    return found


def test_contract_literals_live_only_in_the_kernel() -> None:
    offences = []
    for service in SERVICES:
        for path in sorted((ROOT / service).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, literal in contract_literals(path.read_text()):
                if literal not in ALLOWED.get(rel, ()):
                    offences.append(f"{rel}:{line}: {literal!r}")
    assert not offences, "contract names spelled outside kernel/ (import them from the kernel):\n" + "\n".join(
        offences
    )


def test_the_kernel_defines_every_literal_checked_and_no_guessed_one() -> None:
    kernel = "".join(p.read_text() for p in sorted((ROOT / "kernel").glob("*.py")))
    assert [lit for lit in CONTRACT_LITERALS if lit not in kernel] == []
    code = kernel + "".join(p.read_text() for s in SERVICES for p in sorted((ROOT / s).rglob("*.py")))
    assert [name for name in NEVER_WRITTEN if name in code] == []


def test_the_check_finds_a_literal_added_back() -> None:
    source = '''
"""A docstring may say session.json."""
import time
NAME = "session.json"
def stamp() -> str:
    """Nor does a function's docstring count: host_time."""
    return time.strftime("%Y-%m-%dT%H:%M:%S") + f"{1}.touched"
'''
    assert contract_literals(source) == [(4, "session.json"), (7, "%Y-%m-%dT%H:%M:%S"), (7, ".touched")]
