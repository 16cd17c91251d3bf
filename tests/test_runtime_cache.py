"""The runtime set-up's file cache: a verified file is copied whole, a wrong hash never lands."""

from __future__ import annotations

import hashlib

import pytest

from gpt2web.host import runtime


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class NoNetwork:
    """Sources with the CDN switched off (cdn=None is the real option), counting fetches."""

    def __init__(self, tmp):
        self.real = runtime._Sources(None, 1.0, tmp)
        self.asked = []
        self.from_npm = None  # the offline source below stands in the PyPI transport's place

    def from_cdn(self, name):
        return self.real.from_cdn(name)

    def offline(self, payload):
        def fetch(name):
            self.asked.append(name)
            return payload
        return fetch


def test_a_present_file_fills_the_cache_and_the_cache_fills_a_new_folder(tmp_path):
    data = b"pyodide core file\n" * 1000
    dest, cache, other = tmp_path / "dest", tmp_path / "cache", tmp_path / "other"
    dest.mkdir(), cache.mkdir()
    (dest / "f.wasm").write_bytes(data)
    src = NoNetwork(tmp_path)
    assert runtime._ensure_file("f.wasm", sha(data), dest, cache, src, src.offline(b"")) == "present"
    assert (cache / "f.wasm").read_bytes() == data
    other.mkdir()
    assert runtime._ensure_file("f.wasm", sha(data), other, cache, src, src.offline(b"")) == "cache"
    assert (other / "f.wasm").read_bytes() == data
    assert src.asked == []
    assert not [p.name for p in (*cache.iterdir(), *other.iterdir()) if p.name.startswith(".")]  # no temp files left


def test_a_wrong_hash_is_refused_and_nothing_is_written(tmp_path):
    dest, cache = tmp_path / "dest", tmp_path / "cache"
    dest.mkdir(), cache.mkdir()
    src = NoNetwork(tmp_path)
    with pytest.raises(runtime.HashMismatch):
        runtime._ensure_file("f.wasm", sha(b"good"), dest, cache, src, src.offline(b"tampered"))
    assert list(dest.iterdir()) == [] and list(cache.iterdir()) == []
    # A cached copy with a wrong hash is dropped and fetched again.
    (cache / "f.wasm").write_bytes(b"stale")
    assert runtime._ensure_file("f.wasm", sha(b"good"), dest, cache, src, src.offline(b"good")) != "cache"
    assert (dest / "f.wasm").read_bytes() == b"good" == (cache / "f.wasm").read_bytes()
