"""The demo model's training pieces: the compact output layer is exact, the corpus is pinned."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import demo_corpus  # noqa: E402
import train_demo_model  # noqa: E402


def small_args(**kw):
    base = dict(seed=3, ctx=16, n_embd=32, n_layer=2, n_head=2, dropout=0.0)
    return types.SimpleNamespace(**{**base, **kw})


def randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 else 0.0) * 0.1)


def test_compact_loss_is_the_full_models_loss():
    """Training on the compact rows computes exactly the loss of the expanded 50,257-row model,
    also for targets that stand in the shared row (up to the constant log n_other)."""
    vocab = np.array(sorted({5, 17, 262, 290, 1000, 30000, 50256}), dtype=np.int64)
    remap = np.full(50257, len(vocab), dtype=np.int64)
    remap[vocab] = np.arange(len(vocab))
    n_other = 50257 - len(vocab)
    compact = train_demo_model.make_model(len(vocab) + 1, small_args())
    randomize(compact)
    full = train_demo_model.make_model(50257, small_args())
    full.load_state_dict(train_demo_model.expand_state_dict(compact.state_dict(), vocab))
    full.eval(), compact.eval()
    rng = np.random.default_rng(1)
    ids = rng.choice(vocab, size=(2, 16))  # every target has its own row
    with torch.no_grad():
        want = full(torch.from_numpy(ids), labels=torch.from_numpy(ids)).loss
        got = train_demo_model.loss_fn(compact, torch.from_numpy(remap[ids]), float(np.log(n_other)))
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    # Tokens without a row of their own: each has the shared row's probability.
    ids[0, 5] = 12345
    with torch.no_grad():
        logp = torch.log_softmax(full(torch.from_numpy(ids)).logits[0, 4].double(), -1)
        c = compact(torch.from_numpy(remap[ids])).logits[0, 4].double()
        c[-1] += np.log(n_other)
        shared = torch.log_softmax(c, -1)[-1] - np.log(n_other)
    assert float(logp[12345]) == pytest.approx(float(shared), abs=1e-6)
    assert float(logp[12346]) == pytest.approx(float(shared), abs=1e-6)


def test_a_changed_package_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_corpus, "CACHE", tmp_path)
    src = demo_corpus.SOURCES[1]
    name = f"{src.package}_{src.version.replace(':', '%3a')}_all.deb"
    (tmp_path / name).write_bytes(b"!<arch>\nnot the pinned package")
    with pytest.raises(demo_corpus.CorpusError, match="pinned"):
        demo_corpus.fetch_deb(src)


def test_rst_prose_keeps_sentences_and_drops_code():
    page = """Title
=====

The :func:`open` function returns a :ref:`file object <file-objects>` that you can read
from, as the ``read`` method shows in the example below this paragraph::

    with open("x") as f:
        f.read()

.. note::

   This note is dropped.

>>> 1 + 1
2
"""
    prose = demo_corpus.rst_prose(page)
    assert prose == ("The open function returns a file object that you can read from, as the read "
                     "method shows in the example below this paragraph.")
