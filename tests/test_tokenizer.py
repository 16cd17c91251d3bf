"""gpt2web.tokenizer against tiktoken, the reference GPT-2 tokenizer.

The pure-Python tokenizer must give exactly tiktoken's ids: on the reference table, on a
committed corpus of awkward text, and on random text (hypothesis). Set
GPT2WEB_FUZZ_EXAMPLES=20000 to fuzz harder than the default.

The corpus file also stores tiktoken's ids, so it can check the tokenizer where
tiktoken does not exist (under Pyodide). After editing the texts in it, refresh the
ids with:  PYTHONPATH=py python3 tests/test_tokenizer.py --regenerate-corpus
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiktoken_ext.openai_public import r50k_pat_str

from gpt2web import tokenizer as tokmod
from gpt2web.tokenizer import (
    EOT_ID,
    EOT_TEXT,
    GPT2_TIKTOKEN_SHA256,
    StreamDecoder,
    Tokenizer,
    TokenizerError,
    default_tokenizer,
)

REPO = Path(__file__).resolve().parent.parent
RANKS_PATH = REPO / "weights" / "gpt2.tiktoken"
CORPUS_PATH = Path(__file__).resolve().parent / "data" / "tokenizer_corpus.json"
FUZZ_EXAMPLES = int(os.environ.get("GPT2WEB_FUZZ_EXAMPLES", "600"))

# /work/shared/reference.md, "Tokenizer cases (tiktoken gpt2, checked)".
REFERENCE_CASES = {
    "PostgreSQL is great": [6307, 47701, 318, 1049],
    "I wish you a happy New": [40, 4601, 345, 257, 3772, 968],
    "Happy New Year! I wish": [25082, 968, 6280, 0, 314, 4601],
    "Mississippilessly": [17140, 747, 3974, 30608, 306],
    "大语言模型 🙂": [32014, 46237, 255, 164, 101, 222, 162, 101, 94, 161, 252, 233, 32485],
}


def make_oracle() -> tiktoken.Encoding:
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=r50k_pat_str,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(RANKS_PATH)),
        special_tokens={EOT_TEXT: EOT_ID},
    )


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return default_tokenizer()


@pytest.fixture(scope="module")
def oracle() -> tiktoken.Encoding:
    return make_oracle()


def load_corpus() -> list[dict]:
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))["cases"]


# -- 1. reference table --------------------------------------------------------------


@pytest.mark.parametrize("text", list(REFERENCE_CASES))
def test_reference_cases(tok, oracle, text):
    expected = REFERENCE_CASES[text]
    assert tok.encode(text) == expected
    assert oracle.encode(text) == expected  # the table itself still agrees with tiktoken
    assert tok.decode(expected) == text


def test_reference_token_texts(tok):
    assert [tok.token_bytes(i) for i in REFERENCE_CASES["PostgreSQL is great"]] == [
        b"Post", b"greSQL", b" is", b" great",
    ]
    # 17 bytes -> 5 tokens
    assert len(tok.decode_bytes(REFERENCE_CASES["Mississippilessly"])) == 17


def test_vocabulary_shape(tok, oracle):
    assert tok.n_vocab == 50257 == oracle.n_vocab
    assert tok.token_bytes(EOT_ID) == EOT_TEXT.encode()
    # Every token's bytes agree with tiktoken's, across the whole vocabulary.
    assert [tok.token_bytes(i) for i in range(tok.n_vocab)] == [
        oracle.decode_single_token_bytes(i) for i in range(oracle.n_vocab)
    ]


# -- 2. committed corpus -------------------------------------------------------------


def test_corpus_is_broad():
    names = {case["name"] for case in load_corpus()}
    assert len(names) >= 40
    for needed in ("chinese", "emoji zwj family", "information separators x1c-x1f",
                   "uppercase contractions", "endoftext in text", "windows line endings"):
        assert needed in names


@pytest.mark.parametrize("case", load_corpus(), ids=lambda case: case["name"])
def test_corpus(tok, oracle, case):
    text = case["text"]
    assert tok.encode(text) == case["ids"]
    assert oracle.encode(text, allowed_special="all") == case["ids"]
    assert tok.decode(case["ids"]) == text
    ordinary = tok.encode(text, allow_special=False)
    assert ordinary == oracle.encode_ordinary(text)
    assert tok.decode(ordinary) == text


def test_special_token_only_when_allowed(tok):
    text = f"a{EOT_TEXT}b"
    assert tok.encode(text) == tok.encode("a") + [EOT_ID] + tok.encode("b")
    assert EOT_ID not in tok.encode(text, allow_special=False)
    assert tok.decode(tok.encode(text, allow_special=False)) == text


def test_pretokenize_examples():
    # GPT-2's splitting rules, spelled out: a space sticks to the word after it, the
    # last space of a run goes to the next word, contractions are lowercase only,
    # and U+001C..U+001F are symbols, not whitespace.
    assert tokmod.pretokenize("Hello  world's end\n\n x") == [
        "Hello", " ", " world", "'s", " end", "\n\n", " x",
    ]
    assert tokmod.pretokenize("IT'S 12345 ok!!") == ["IT", "'", "S", " 12345", " ok", "!!"]
    assert tokmod.pretokenize("a\x1cb \x1f") == ["a", "\x1c", "b", " \x1f"]
    assert tokmod.pretokenize("x  ") == ["x", "  "]


def test_long_pieces(tok, oracle):
    # Long pieces take the BPE's worst case; they must still agree (and be quick).
    texts = ["9" * 5000, "ab" * 3000, "\u4e00\u4e8c" * 1500, " " * 3000 + "x", "é" * 2000]
    for text in texts:
        assert tok.encode(text) == oracle.encode_ordinary(text)


# -- 3. fuzzing ----------------------------------------------------------------------

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Characters where GPT-2's pattern is easy to get wrong: every kind of whitespace
# (including the \x1c-\x1f that str.isspace() counts and Rust's \s does not),
# apostrophes and contractions in both cases, digits and other numerals, letters from
# several scripts and from recent Unicode versions, combining marks, emoji parts.
TRICKY = (
    list(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f"
         "\u205f\u3000\u180e\u200b\u200d\ufeff")
    + ["'s", "'t", "'d", "'m", "'ll", "'ve", "'re", "'S", "'LL", "'", "\u2019s", "\r\n", "  "]
    + list("aZéß文かカ한Дαאع0123456789²½Ⅻ٣!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~")
    + ["\u0301", "\ufe0f", "🙂", "👍🏽", "🇫🇷", "\U00031350", "\U00010d40", "\U0001e5f1"]
)
tricky_text = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=30
).map("".join)


def check_against_oracle(tok, oracle, text):
    ids = tok.encode(text, allow_special=False)
    assert ids == oracle.encode_ordinary(text)
    assert tok.decode(ids) == text


@fuzz_settings
@given(text=st.text())
def test_fuzz_any_text(tok, oracle, text):
    check_against_oracle(tok, oracle, text)


@fuzz_settings
@given(text=st.text(st.characters(codec="utf-8", min_codepoint=0x80), max_size=20))
def test_fuzz_non_ascii(tok, oracle, text):
    check_against_oracle(tok, oracle, text)


@fuzz_settings
@given(text=tricky_text)
def test_fuzz_tricky_mixes(tok, oracle, text):
    check_against_oracle(tok, oracle, text)


@settings(max_examples=max(50, FUZZ_EXAMPLES // 10), deadline=None)
@given(parts=st.lists(tricky_text, max_size=4))
def test_fuzz_with_special_token(tok, oracle, parts):
    text = EOT_TEXT.join(parts)
    assert tok.encode(text) == oracle.encode(text, allowed_special="all")


def test_character_tables_match_tiktoken():
    """The code point tables in tokenizer.py are exactly tiktoken's \\p{L}, \\p{N}, \\s.

    A pattern that matches one character, with a vocabulary of bare bytes, makes
    tiktoken keep exactly the characters in the class and drop the rest.
    """
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    byte_ranks = {bytes([b]): b for b in range(256)}

    def tiktoken_class(pattern: str) -> set[int]:
        enc = tiktoken.Encoding(name="probe", pat_str=pattern, mergeable_ranks=byte_ranks,
                                special_tokens={})
        return {ord(c) for c in bytes(enc.encode_ordinary(everything)).decode()}

    def table(ranges: str) -> set[int]:
        return {c for a, b in tokmod._parse_ranges(ranges) for c in range(a, b + 1)}

    assert table(tokmod._LETTER_RANGES) == tiktoken_class(r"\p{L}")
    assert table(tokmod._NUMBER_RANGES) == tiktoken_class(r"\p{N}")
    assert table(tokmod._WHITE_SPACE_RANGES) == tiktoken_class(r"\s")


# -- 4. display and streaming --------------------------------------------------------


def test_token_label(tok):
    label = tok.token_label(164)  # one byte of 语, from the reference table
    assert label == "\\xe8" and label.isascii()
    assert tok.token_label(46237) == "\\xe8\\xaf"
    assert tok.token_label(32014) == "大"
    assert tok.token_label(1049) == " great"
    assert tok.token_label(198) == "\\n"
    assert tok.token_label(EOT_ID) == EOT_TEXT
    assert tok.token_label(tok.encode("\t")[0]) == "\\t"
    assert tok.token_label(tok.encode("\\")[0]) == "\\\\"
    assert tok.token_label(tok.encode("\x1c")[0]) == "\\x1c"
    assert tok.token_label(tok.encode("\u00a0")[0]) == "\\u00a0"


def test_token_labels_are_unambiguous(tok):
    labels = [tok.token_label(i) for i in range(tok.n_vocab)]
    assert len(set(labels)) == tok.n_vocab
    assert all(label.isprintable() for label in labels)


STREAM_TEXTS = ["大语言模型 🙂", "family 👨\u200d👩\u200d👧 🇯🇵 👋🏽 café"]


@pytest.mark.parametrize("text", STREAM_TEXTS)
def test_stream_decoder(tok, text):
    stream = StreamDecoder(tok)
    chunks = [stream.push(i) for i in tok.encode(text)]
    assert "\ufffd" not in "".join(chunks)
    assert "".join(chunks) + stream.flush() == text
    # The byte tokens of an unfinished character wait for the rest of it.
    assert "" in chunks


def test_stream_decoder_flushes_an_unfinished_character(tok):
    stream = tok.stream_decoder()
    assert stream.push(32014) == "大"
    assert stream.push(46237) == ""  # 2 of the 3 bytes of 语
    assert stream.flush() == "\ufffd"
    assert stream.push(1049) == " great"  # flush reset the decoder


# -- 5. bad input --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, tokmod.EOT_ID + 1, 10**9, 1.0, "5", None])
def test_decode_rejects_bad_ids(tok, bad):
    with pytest.raises(TokenizerError, match=repr(bad).replace(".", r"\.")):
        tok.decode([1, bad, 2])
    with pytest.raises(TokenizerError):
        tok.token_bytes(bad)


def test_decode_accepts_numpy_ints(tok):
    np = pytest.importorskip("numpy")
    ids = np.array(REFERENCE_CASES["PostgreSQL is great"], dtype=np.int64)
    assert tok.decode(ids) == "PostgreSQL is great"


def test_corrupt_ranks_file_is_refused():
    good = RANKS_PATH.read_bytes()
    assert Tokenizer.from_bytes(good, source="mine.tiktoken").n_vocab == 50257
    flipped = bytearray(good)
    flipped[1000] ^= 1
    with pytest.raises(TokenizerError, match=r"mine\.tiktoken.*sha256"):
        Tokenizer.from_bytes(bytes(flipped), source="mine.tiktoken")
    with pytest.raises(TokenizerError, match=r"gpt2\.tiktoken"):
        Tokenizer.from_bytes(good[:-100])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.replace(b"IQ== 0\n", b"IQ==0\n", 1), "line 1"),
        (lambda d: d.replace(b"IQ== 0\n", b"I!Q= 0\n", 1), "line 1"),
        (lambda d: d.replace(b"Ig== 1\n", b"Ig== 0\n", 1), "rank 0"),
        (lambda d: d[: d.rindex(b"\n", 0, -1) + 1], "expected 50256 ranks"),
        (lambda d: d.replace(b"IQ== 0\n", b"Ig== 0\n", 1), "twice"),
    ],
)
def test_malformed_ranks_are_refused_without_hash(damage, message):
    # Without the hash check, parsing itself must still catch damage, naming the file.
    data = damage(RANKS_PATH.read_bytes())
    with pytest.raises(TokenizerError, match=f"custom.tiktoken.*{message}"):
        Tokenizer.from_bytes(data, expected_sha256=None, source="custom.tiktoken")


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.tiktoken"
    with pytest.raises(TokenizerError, match="nope.tiktoken"):
        Tokenizer.from_file(missing)


def test_default_tokenizer_file_and_hash():
    assert tokmod._default_ranks_path() == RANKS_PATH
    assert hashlib.sha256(RANKS_PATH.read_bytes()).hexdigest() == GPT2_TIKTOKEN_SHA256
    assert Tokenizer.from_file(RANKS_PATH).encode("hi there") == [5303, 612]


# -- corpus maintenance --------------------------------------------------------------


def _dump_corpus(cases: list[dict]) -> str:
    """One case per line; characters that would be invisible are \\u-escaped."""
    lines = []
    for case in cases:
        line = json.dumps(case, ensure_ascii=False)
        lines.append("".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in line))
    about = ("Texts for the GPT-2 tokenizer tests and their ids from tiktoken "
             "(allowed_special='all'). See tests/test_tokenizer.py.")
    return '{"about": ' + json.dumps(about) + ',\n "cases": [\n  ' + ",\n  ".join(lines) + "\n]}\n"


def _regenerate_corpus() -> None:
    oracle = make_oracle()
    cases = load_corpus()
    for case in cases:
        case["ids"] = oracle.encode(case["text"], allowed_special="all")
    text = _dump_corpus(cases)
    assert json.loads(text)["cases"] == cases
    CORPUS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {len(cases)} cases to {CORPUS_PATH}")


if __name__ == "__main__" and sys.argv[1:] == ["--regenerate-corpus"]:
    _regenerate_corpus()


def test_the_pinned_vocabulary_parses_the_same_without_checks():
    data = RANKS_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == tokmod.GPT2_TIKTOKEN_SHA256
    assert tokmod._parse_known_ranks(data) == tokmod._parse_ranks(data, "gpt2.tiktoken")


# -- the corpus under Pyodide ------------------------------------------------------------

PYODIDE_CORPUS = r"""
const fs = await import("node:fs");
const { pathToFileURL } = await import("node:url");
const [runtime, tokenizerPy, ranksPath, corpusPath] = process.argv.slice(1);
const { loadPyodide } = await import(pathToFileURL(runtime + "/pyodide.mjs"));
const pyodide = await loadPyodide({ indexURL: runtime + "/" });
pyodide.FS.mkdirTree("/lib/gpt2web");
pyodide.FS.writeFile("/lib/gpt2web/__init__.py", "");
pyodide.FS.writeFile("/lib/gpt2web/tokenizer.py", fs.readFileSync(tokenizerPy));
pyodide.FS.writeFile("/lib/gpt2.tiktoken", fs.readFileSync(ranksPath));
pyodide.FS.writeFile("/lib/corpus.json", fs.readFileSync(corpusPath));
const out = await pyodide.runPythonAsync(`
import json, sys
sys.path.insert(0, "/lib")
from gpt2web.tokenizer import Tokenizer
tok = Tokenizer.from_file("/lib/gpt2.tiktoken")
failures = []
cases = json.load(open("/lib/corpus.json", encoding="utf-8"))["cases"]
for case in cases:
    got = tok.encode(case["text"])
    if got != case["ids"] or tok.decode(case["ids"]) != case["text"]:
        failures.append(case["name"])
json.dumps({"python": sys.version.split()[0], "platform": sys.platform, "cases": len(cases),
            "failures": failures})
`);
console.log(out);
"""


def test_corpus_under_pyodide():
    """The same corpus through the tokenizer as the browser runs it: Pyodide's CPython (in
    Node, which runs the same WebAssembly interpreter as the page, in a few seconds)."""
    import shutil
    import subprocess

    node = shutil.which("node")
    runtime = Path(__file__).resolve().parents[1] / "web" / "runtime"
    if node is None or not (runtime / "pyodide.mjs").is_file():
        pytest.skip("needs Node and the Pyodide runtime (python3 scripts/setup_runtime.py)")
    out = subprocess.run([node, "--input-type=module", "-e", PYODIDE_CORPUS, str(runtime),
                          str(Path(tokmod.__file__)), str(RANKS_PATH), str(CORPUS_PATH)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["platform"] == "emscripten" and result["cases"] == len(load_corpus())
    assert result["failures"] == [], result
