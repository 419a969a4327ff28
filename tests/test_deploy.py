"""What the Dockerfile does, without a container: the project as an installed (non-editable) wheel.

Why: tests and ``make demo`` run from the checkout, where every data file is on disk whether
or not it is packaged. A TOML file missing from ``[tool.setuptools.package-data]`` only breaks
an installed copy — the image, or ``pip install .`` on a customer's box.

* ``test_wheel_contains_every_packaged_data_file`` (fast): builds the wheel from a clean copy of
  the tracked files and checks every tracked non-Python file of the six packages is inside.
* ``test_installed_wheel_serves`` (slow): fresh venv, ``pip install`` the wheel (dependencies from
  the configured index), ``genjin speech install``, ``genjin db upgrade`` on SQLite, ``genjin doctor``,
  then ``genjin serve`` with env-only config until ``/healthz`` answers 200, then SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "nlp", "storage", "reminders", "cards")


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files are tracked")
    out = subprocess.run(["git", "ls-files", *PACKAGES, "pyproject.toml", "README.md"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def build_wheel(out_dir: Path) -> Path:
    """Build from a copy of the tracked files: a stale ``build/`` in the checkout cannot leak in."""
    source = out_dir / "src"
    for name in _tracked_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir), str(source)],
                   check=True, capture_output=True, text=True)
    (wheel,) = out_dir.glob("genjin-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_contains_every_packaged_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [f for f in _tracked_files() if f.split("/", 1)[0] in PACKAGES and not f.endswith(".py")]
    assert data, "expected TOML data files in the packages"
    missing = sorted(f for f in data if f not in names)
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
    migrations = [f for f in _tracked_files() if f.startswith("storage/migrations/") and f.endswith(".py")]
    assert migrations and all(f in names for f in migrations)
    for required in ("handlers/leads/rules/default.toml", "bot/demo/org.toml", "reminders/calendar/default/calendar.toml"):
        assert required in names
    assert not any(n.startswith("tests/") or n.startswith("benchmarks/") for n in names)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _wait_healthy(proc: subprocess.Popen[str], port: int, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited early: {proc.communicate()[1]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return json.loads(resp.read())
        except OSError:
            time.sleep(0.3)
    raise AssertionError("no 200 from /healthz in time")


@pytest.mark.slow  # ~30 s here (local index, warm pip cache); needs the package index pip is configured with
def test_installed_wheel_serves(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], dict(os.environ), tmp_path, 120)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], dict(os.environ), tmp_path, 900)

    run_dir = tmp_path / "run"  # no genjin.toml here: env-only configuration, as in the container
    run_dir.mkdir()
    port = _free_port()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "GENJIN_MODEL_CACHE": str(tmp_path / "models"),
        "GENJIN_DATABASE_URL": f"sqlite+aiosqlite:///{run_dir / 'genjin.db'}",
        "GENJIN_SERVER_PORT": str(port),
        "GENJIN_LOCAL_ENABLED": "false",
    }
    genjin = str(bin_dir / "genjin")
    _run([genjin, "speech", "install"], env, run_dir, 300)
    _run([genjin, "db", "upgrade"], env, run_dir, 120)
    doctor = _run([genjin, "doctor"], env, run_dir, 120)
    assert "site-packages" in doctor.stdout and str(ROOT) not in doctor.stdout  # data files from the installed copy

    proc = subprocess.Popen([genjin, "serve"], env=env, cwd=run_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        report = _wait_healthy(proc, port, 60)
        assert report["ok"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
