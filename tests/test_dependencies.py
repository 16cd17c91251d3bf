"""The version floors in pyproject.toml are ones that have what the project relies on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def floor(extra: str, package: str) -> tuple[int, ...] | None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"][extra]
    for dep in deps:
        m = re.fullmatch(rf"{package}\s*>=\s*([0-9.]+)(,.*)?", dep.strip(), re.IGNORECASE)
        if m:
            return tuple(int(p) for p in m.group(1).split("."))
    return None


def test_starlette_floor_has_range_requests():
    """Resumed downloads need FileResponse's HTTP Range support (Starlette 0.39.0), without the
    Range-header denial of service fixed in 0.49.1; FastAPI >= 0.120.1 is the first to allow it
    (0.120.0 requires starlette < 0.49). `fastapi>=0.110` alone allowed a Starlette without Range."""
    assert (floor("host", "starlette") or (0,)) >= (0, 49, 1)
    assert (floor("host", "fastapi") or (0,)) >= (0, 120, 1)


def test_installed_starlette_answers_a_range_request(tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    data = bytes(range(256)) * 4
    (tmp_path / "shard.bin").write_bytes(data)
    app = Starlette(routes=[Route("/shard.bin", lambda request: FileResponse(tmp_path / "shard.bin"))])
    r = TestClient(app).get("/shard.bin", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"


@pytest.mark.parametrize("package", ["starlette", "fastapi"])
def test_installed_versions_meet_the_floors(package):
    from importlib.metadata import version

    installed = tuple(int(p) for p in re.findall(r"\d+", version(package))[:3])
    assert installed >= floor("host", package)
