"""Assembly of the bundled whisper-base weights: digest, atomic publish, idempotent, concurrent."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nlp.speech import weights
from nlp.speech.weights import MODEL_NAME, MODEL_SHA256, ensure_model_dir, sha256_file

ROOT = Path(__file__).resolve().parents[1]

try:
    weights.bundled_files()
except weights.WeightsError as exc:  # pragma: no cover - deps missing
    pytest.skip(f"bundled weights not installed: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_model_dir(tmp_path_factory.mktemp("cache"))


def test_assembles_verified_world_readable_copy(assembled: Path) -> None:
    target, tmp_path = assembled, assembled.parent
    assert target == tmp_path / MODEL_NAME
    assert sha256_file(target / "model.bin") == MODEL_SHA256
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's 0700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in target.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_NAME]  # no temp dir left behind


def test_idempotent_does_not_rewrite(assembled: Path) -> None:
    target, tmp_path = assembled, assembled.parent
    inode = (target / "model.bin").stat().st_ino
    assert ensure_model_dir(tmp_path) == target
    assert (target / "model.bin").stat().st_ino == inode


def test_broken_copy_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / MODEL_NAME
    target.mkdir()
    (target / "model.bin").write_bytes(b"half written")
    (tmp_path / f".{MODEL_NAME}.crashed.tmp").mkdir()  # leftover of a killed run: ignored
    assert ensure_model_dir(tmp_path) == target
    assert sha256_file(target / "model.bin") == MODEL_SHA256


def test_verify_catches_same_size_corruption(assembled: Path) -> None:
    target, tmp_path = assembled, assembled.parent
    with (target / "model.bin").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    assert ensure_model_dir(tmp_path) == target  # size check only: not noticed
    ensure_model_dir(tmp_path, verify=True)
    assert sha256_file(target / "model.bin") == MODEL_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_NAME]


def test_concurrent_processes_all_get_the_same_valid_copy(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from nlp.speech.weights import ensure_model_dir; print(ensure_model_dir(Path(sys.argv[1])))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(tmp_path / MODEL_NAME)}
    assert sha256_file(tmp_path / MODEL_NAME / "model.bin") == MODEL_SHA256
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_NAME]


def test_env_var_sets_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENJIN_MODEL_CACHE", str(tmp_path / "c"))
    assert weights.default_cache_dir() == tmp_path / "c"
