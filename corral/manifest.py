"""`run_manifest.json`: what a run was, written beside its output so it can be reproduced and compared.

Holds the resolved recipe (every dataclass field, defaults included), library versions, the git
commit of corral, the data fingerprint and row counts, and the run's status. It is written when the
run starts (`"status": "running"`, with the pid and host) and rewritten atomically at the end
(`"finished"`, with metrics). A run that never reached the end (killed, crashed) is found by the next
launch into the same `output_dir` (`mark_interrupted`: still `running`, its pid gone) and recorded as
`"interrupted"`; the new manifest keeps earlier attempts under `previous_attempts`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from corral.recipe import redact_argv

LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "evaluate", "bitsandbytes", "tokenizers")
MANIFEST_NAME = "run_manifest.json"


def library_versions() -> dict[str, str | None]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def git_commit(repo_dir: str | Path | None = None) -> str | None:
    """The commit of the corral checkout (with `+dirty` when it has uncommitted changes), or None."""
    repo_dir = Path(repo_dir or Path(__file__).resolve().parent.parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_dir,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_json_atomic(path: str | Path, payload: dict) -> None:
    """Write JSON to a temp file and rename it over `path`: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return True
    return True


def read_manifest(output_dir: str | Path) -> dict | None:
    """The run manifest in `output_dir`, or None (absent or unreadable)."""
    try:
        manifest = json.loads((Path(output_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def mark_interrupted(output_dir: str | Path) -> str | None:
    """If the manifest in `output_dir` says `running` but its process is gone, rewrite it as
    `interrupted` and return its `started_at`; else None. (A live pid on another host cannot be
    checked and counts as gone: two machines training into one directory is not supported.)"""
    manifest = read_manifest(output_dir)
    if not manifest or manifest.get("status") != "running":
        return None
    if manifest.get("host") == platform.node() and manifest.get("pid") != os.getpid() and _pid_alive(manifest.get("pid")):
        return None
    manifest.update(status="interrupted", interrupted_detected_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json_atomic(Path(output_dir) / MANIFEST_NAME, manifest)
    return str(manifest.get("started_at"))


def _attempt(manifest: dict) -> dict:
    keys = ("status", "started_at", "finished_at", "interrupted_detected_at", "pid", "host")
    return {k: manifest[k] for k in keys if k in manifest}


def start_manifest(output_dir: str, script: str, config: dict, data: dict) -> dict:
    previous = read_manifest(output_dir) or {}
    attempts = previous.get("previous_attempts", []) + ([_attempt(previous)] if previous.get("status") else [])
    manifest = {
        "script": script,
        "argv": redact_argv(sys.argv),  # `--hub_token hf_...` is no part of a reproducible run
        "status": "running",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": os.getpid(),
        "host": platform.node(),
        "previous_attempts": attempts,
        "corral_commit": git_commit(),
        "libraries": library_versions(),
        "config": config,
        "data": data,
    }
    write_json_atomic(Path(output_dir) / MANIFEST_NAME, manifest)
    return manifest


def finish_manifest(output_dir: str, manifest: dict, **results) -> dict:
    manifest = {**manifest, **results, "status": "finished", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json_atomic(Path(output_dir) / MANIFEST_NAME, manifest)
    return manifest
