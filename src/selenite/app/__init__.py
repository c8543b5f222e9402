"""The web app (Streamlit): ``selenite app [--port P] [--run RUN_DIR…]``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from selenite.app.core import RUNS_ENV, check_runs

# offline: no usage statistics, no browser opened by the server, no file watcher; uploads capped
SERVER_FLAGS = ("--browser.gatherUsageStats", "false", "--server.headless", "true",
                "--server.fileWatcherType", "none", "--server.maxUploadSize", "64",
                "--global.developmentMode", "false", "--client.toolbarMode", "minimal")


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    home = Path(__file__).with_name("home.py")
    return [sys.executable, "-m", "streamlit", "run", str(home), "--server.port", str(port),
            "--server.address", address, *SERVER_FLAGS]


def launch(port: int = 8501, runs: list[Path] | None = None, address: str = "127.0.0.1") -> int:
    from selenite.errors import InputError

    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535 (got {port})")
    env = dict(os.environ)
    env[RUNS_ENV] = os.pathsep.join(str(r) for r in check_runs(runs or []))
    return subprocess.call(command(port, address), env=env)
