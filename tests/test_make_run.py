"""`make run`, as a newcomer types it: migrate, seed, serve — and again on the same database."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import requests

from .servers import REPO_ROOT, free_port, log_tail, stop, wait_until_healthy

pytestmark = pytest.mark.slow


def make_run(tmp_path, port: int, log_name: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "MAKEFLAGS")}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port), WORKERS="2")
    log = tmp_path / log_name
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, log)
    except RuntimeError:
        stop(process)
        raise
    return process, base


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_the_seeded_app_and_runs_again_on_the_same_database(tmp_path):
    process, base = make_run(tmp_path, free_port(), "first.log")
    try:
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/v1/campaigns/current", timeout=5).json()["slug"] == "nno-2027"
        pledge = requests.post(
            f"{base}/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "west-side", "email": "first.run@example.org"},
            timeout=5,
        )
        assert pledge.status_code == 201
    finally:
        stop(process)
    assert (tmp_path / "instance" / "porchlight.db").exists()

    process, base = make_run(tmp_path, free_port(), "second.log")
    try:
        totals = requests.get(f"{base}/api/v1/campaigns/current/totals", timeout=5).json()
        campaigns = requests.get(f"{base}/api/v1/campaigns", timeout=5).json()["campaigns"]
        neighborhoods = requests.get(f"{base}/api/v1/neighborhoods", timeout=5).json()["neighborhoods"]
    finally:
        stop(process)
    assert totals["total"] == 1, log_tail(tmp_path / "second.log")
    assert len(campaigns) == 1
    assert len(neighborhoods) == 35
