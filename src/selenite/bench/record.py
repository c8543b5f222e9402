"""Keep docs/benchmarks.md: each benchmark owns one section between HTML comment markers."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from selenite.runs import write_text_atomic

HEADER = "# selenite benchmarks\n\nEvery figure here is produced by a `selenite bench …` command anyone can run.\n"


def machine_line() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(path: str | Path, name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of the benchmarks file with ``body``."""
    p = Path(path)
    text = p.read_text() if p.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(p, text)
    return p
