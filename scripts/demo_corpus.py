#!/usr/bin/env python3
"""The demo model's training corpus: English that may be redistributed as model weights (host only).

Every source is a pinned Debian package. `apt-get download` fetches the .deb into the user's cache
(~/.cache/gpt2web/corpus/), its sha256 is checked against the pin below, and a changed package is
refused, so the corpus is the same on every machine or not built at all. The King James text is
read with the `bible` program of the installed `bible-kjv` package; its output is hashed too.

Each source is cut into documents; every 20th document (index 7 mod 20) is held out of training.

    python3 scripts/demo_corpus.py            # build it and print each source's size
"""

from __future__ import annotations

import hashlib
import html
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpt2web" / "corpus"
HELD_OUT = 7  # document index mod 20 kept out of training


@dataclass
class Source:
    name: str
    package: str
    version: str
    sha256: str  # of the .deb
    licence: str
    kind: str  # "kjv" (archaic) or "modern"
    notes: str
    docs: list[str] = field(default_factory=list)
    text_sha256: str = ""

    def split(self) -> tuple[list[str], list[str]]:
        train = [d for i, d in enumerate(self.docs) if i % 20 != HELD_OUT]
        held = [d for i, d in enumerate(self.docs) if i % 20 == HELD_OUT]
        return train, held


SOURCES = [
    Source("kjv", "bible-kjv-text", "4.38", "",
           "public domain (Debian copyright: the KJV text's copyright expired; provided for unrestricted use)",
           "kjv", "The King James Version of the Bible, one chapter per document, verse numbers dropped."),
    Source("python-docs", "python3.11-doc", "3.11.2-6+deb12u9",
           "", "PSF License Agreement (Python documentation)", "modern",
           "The Python 3.11 documentation's reStructuredText sources: prose paragraphs only "
           "(code, tables, directives and markup removed), one page per document."),
    Source("wordnet", "wordnet-base", "1:3.0-37", "",
           "WordNet 3.0 licence (permission to use, copy, modify and distribute, with its notice)", "modern",
           "WordNet 3.0 glosses and their example sentences, 40 word senses per document."),
    Source("fortunes", "fortunes", "1:1.99.1-7.3", "",
           "BSD (fortune-mod's data files)", "modern",
           "The fortune-mod quotations (the non-offensive set, ASCII art left out), 25 per document."),
]

PINS = {  # sha256 of each .deb, checked on every build
    "bible-kjv-text": "d61b6aad4c51ba9e2800b825325fa6a09e99a0d02a9bb6dc4724fcc4995a1b7a",
    "python3.11-doc": "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be",
    "wordnet-base": "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
    "fortunes": "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
}
KJV_TEXT_SHA256 = "cd45f0c9cedab8e4439bd6486c8952c77cc8b0ecc5d1f6ae3513f2039f47229d"  # sha256 of the `bible` program's whole output


class CorpusError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_deb(src: Source) -> bytes:
    """The pinned package's .deb bytes, from the cache or `apt-get download`, checked."""
    CACHE.mkdir(parents=True, exist_ok=True)
    fname = f"{src.package}_{src.version.replace(':', '%3a')}_all.deb"
    path = CACHE / fname
    if not path.is_file():
        if not shutil.which("apt-get"):
            raise CorpusError(f"{src.name}: needs Debian's apt-get to fetch {src.package}={src.version}")
        r = subprocess.run(["apt-get", "download", f"{src.package}={src.version}"], cwd=CACHE,
                           capture_output=True, text=True)
        if r.returncode != 0 or not path.is_file():
            raise CorpusError(f"{src.name}: apt-get download {src.package}={src.version} failed: "
                              f"{r.stderr.strip().splitlines()[-1:] or r.returncode}")
    data = path.read_bytes()
    digest = sha256(data)
    want = PINS[src.package]
    if digest != want:
        raise CorpusError(f"{src.name}: {path.name} has sha256 {digest}, not the pinned {want}: the "
                          f"package changed; refusing to train on a different text")
    src.sha256 = digest
    return data


def deb_files(data: bytes) -> dict[str, bytes]:
    """The files inside a .deb (an ar archive holding data.tar.*), by path."""
    if data[:8] != b"!<arch>\n":
        raise CorpusError("not a Debian package (no ar header)")
    pos, members = 8, {}
    while pos + 60 <= len(data):
        head = data[pos:pos + 60]
        name = head[:16].decode().strip().rstrip("/")
        size = int(head[48:58].decode().strip())
        members[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    tar_name = next(n for n in members if n.startswith("data.tar"))
    out = {}
    with tarfile.open(fileobj=io.BytesIO(members[tar_name])) as tf:
        for m in tf.getmembers():
            if m.isfile():
                out[m.name.lstrip("./")] = tf.extractfile(m).read()
    return out


# ---------------------------------------------------------------------------- the sources

VERSE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def kjv_docs(src: Source) -> list[str]:
    fetch_deb(src)  # pinned and hashed like the others; the text is read with the installed program
    if not shutil.which("bible"):
        raise CorpusError("the KJV needs Debian's bible-kjv package: apt-get install -y bible-kjv")
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    src.text_sha256 = sha256(text.encode())
    if src.text_sha256 != KJV_TEXT_SHA256:
        raise CorpusError(f"kjv: the bible program's text has sha256 {src.text_sha256}, not the pinned "
                          f"{KJV_TEXT_SHA256}")
    chapters: list[list[str]] = []
    key = None
    for line in text.splitlines():
        m = VERSE.match(line.strip())
        if not m:
            if line.strip() and chapters:
                chapters[-1][-1] += " " + line.strip()
            continue
        book, chap, _, verse = m.groups()
        if (book, chap) != key:
            chapters.append([])
            key = (book, chap)
        chapters[-1].append(verse.strip())
    return [" ".join(c) for c in chapters]


ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`([^`<]*?)(?:\s*<[^>]*>)?`")
LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_+")
UNDERLINE = re.compile(r"^([=\-~^*+#\"'`.])\1{3,}\s*$")
PROSE_DIRS = ("tutorial", "howto", "faq", "library", "reference", "using", "extending", "glossary",
              "installing", "distributing", "whatsnew/3.11")


def rst_prose(text: str) -> str:
    """The prose paragraphs of a reStructuredText page, markup removed."""
    paras, block, literal_next = [], [], False
    lines = text.splitlines() + [""]
    i = 0
    out_blocks: list[list[str]] = []
    for line in lines:
        if line.strip() == "":
            if block:
                out_blocks.append(block)
                block = []
            continue
        block.append(line)
    for block in out_blocks:
        first = block[0]
        indented = first[:1] in (" ", "\t")
        if literal_next and indented:
            continue  # the literal block after "::"
        literal_next = block[-1].rstrip().endswith("::")
        if indented and (first.strip().startswith((">>>", "$", "...")) or first.startswith("   ") and
                         not first.strip()[:1].isalpha()):
            continue
        if first.lstrip().startswith((".. ", "+-", "|", "=", "* ", "- ", "#.")) and not first.lstrip().startswith(("* ", "- ")):
            continue
        if any(UNDERLINE.match(l) for l in block):
            continue  # a title
        para = " ".join(l.strip() for l in block)
        para = re.sub(r"^[*-] ", "", para)
        para = ROLE.sub(lambda m: m.group(1).lstrip("~!"), para)
        para = LINK.sub(r"\1", para)
        para = para.replace("``", "").replace("**", "").replace("\\", "")
        para = re.sub(r"(?<!\w)\*([^*]+)\*(?!\w)", r"\1", para)
        para = re.sub(r"`([^`]+)`_*", r"\1", para)
        para = re.sub(r"\[\d+\]_", "", para)
        para = para.rstrip(":") + ("." if para.endswith("::") else "")
        words = para.split()
        if len(words) < 8:
            continue
        letters = sum(c.isalpha() or c == " " for c in para)
        if letters / len(para) < 0.85:
            continue
        paras.append(para)
    return "\n".join(paras)


def python_docs(src: Source) -> list[str]:
    files = deb_files(fetch_deb(src))
    prefix = "usr/share/doc/python3.11/html/_sources/"
    docs = []
    for path in sorted(files):
        if not path.startswith(prefix) or not path.endswith(".rst.txt"):
            continue
        rel = path[len(prefix):]
        if not rel.startswith(PROSE_DIRS):
            continue
        prose = rst_prose(files[path].decode("utf-8", "replace"))
        if len(prose) > 200:
            docs.append(prose)
    return docs


def wordnet_docs(src: Source) -> list[str]:
    files = deb_files(fetch_deb(src))
    entries = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in files[f"usr/share/wordnet/data.{pos}"].decode("utf-8", "replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header
            head, gloss = line.split("|", 1)
            f = head.split()
            n = int(f[3], 16)
            words = [f[4 + 2 * k].replace("_", " ") for k in range(n)]
            words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]
            gloss = gloss.strip()
            if '"' not in gloss:
                continue  # keep the senses with example sentences: real sentences of modern English
            entries.append(f"{', '.join(dict.fromkeys(words))}: {gloss}")
    return ["\n".join(entries[i:i + 40]) for i in range(0, len(entries), 40)]


FORTUNE_SKIP = {"ascii-art", "translate-me"}


def fortune_docs(src: Source) -> list[str]:
    files = deb_files(fetch_deb(src))
    prefix = "usr/share/games/fortunes/"
    quotes = []
    for path in sorted(files):
        name = path[len(prefix):] if path.startswith(prefix) else ""
        if not name or "." in name or "/" in name or name in FORTUNE_SKIP:
            continue
        for q in files[path].decode("latin-1").split("\n%\n"):
            q = q.strip().replace("\t", "    ")
            if len(q) > 20 and sum(c.isalpha() or c.isspace() for c in q) / len(q) > 0.8:
                quotes.append(q)
    return ["\n\n".join(quotes[i:i + 25]) for i in range(0, len(quotes), 25)]


BUILDERS = {"kjv": kjv_docs, "python-docs": python_docs, "wordnet": wordnet_docs, "fortunes": fortune_docs}


def build() -> list[Source]:
    for src in SOURCES:
        src.docs = BUILDERS[src.name](src)
        if not src.text_sha256:
            src.text_sha256 = sha256("\n\x00".join(src.docs).encode())
    return SOURCES


def main() -> None:
    try:
        sources = build()
    except CorpusError as e:
        sys.exit(f"corpus: {e}")
    for s in sources:
        train, held = s.split()
        print(f"{s.name:12s} {s.package}={s.version} sha256 {s.sha256[:16]}… docs {len(s.docs)} "
              f"(held out {len(held)}), {sum(map(len, train)) / 1e6:.2f} MB train, "
              f"{sum(map(len, held)) / 1e6:.2f} MB held out; text sha256 {s.text_sha256[:16]}…")


if __name__ == "__main__":
    main()
