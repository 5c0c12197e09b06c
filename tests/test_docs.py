"""The manual stays true: README.md and docs/*.md against the repository.

- every relative link points to a file, and to an existing heading when it has a `#anchor`
  (GitHub's heading slugs);
- every `make <target>` named in a code span or fenced block is a Makefile target;
- every `--flag` of a fenced `python <script>.py ...` command is a flag that script defines (read
  once per script from its `--helpfull`, or `--help` for argparse scripts);
- every fenced `python <script>.py --help` / `python -m <module> --help` line exits 0;
- no comment or docstring of the code cites the specification file or an issue number.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&(])make\s+([A-Za-z][\w-]*)")
PYTHON = re.compile(r"^(?:\S*/)?python3?$")
HELP_ARGS = ("--help", "-h", "--helpfull", "--helpshort")


def _rel(path: Path, root: Path = ROOT) -> str:
    return str(path.relative_to(root))


def split_fences(text: str) -> tuple[list[str], list[str]]:
    """(prose lines, fenced lines) of a Markdown text; fence markers belong to neither."""
    prose, fenced, inside = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        (fenced if inside else prose).append(line)
    return prose, fenced


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub numbers them."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for line in prose:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `path` whose file or heading does not exist (named from `root`)."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    text = CODE_SPAN.sub("", "\n".join(prose))
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{_rel(path, root)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{_rel(path, root)}: {target} (no heading #{anchor} in {dest.name})")
    return bad


def commands(path: Path) -> list[list[str]]:
    """The fenced command lines of `path` as words: continuation lines joined, comments and
    `[...]` optional-argument brackets dropped, quoted arguments kept whole."""
    _, fenced = split_fences(path.read_text(encoding="utf-8"))
    joined, buf = [], ""
    for line in fenced:
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        joined.append(buf)
        buf = ""
    if buf:
        joined.append(buf)
    out = []
    for line in joined:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        out.append([w.strip("[]") for w in words])
    return out


def python_invocations(words: list[str]) -> list[tuple[str, list[str]]]:
    """(script or `-m module`, its arguments) for every `python X ...` in one command line."""
    found = []
    for i, w in enumerate(words):
        if not PYTHON.match(w) or i + 1 >= len(words):
            continue
        rest = words[i + 1 :]
        end = next((k for k, x in enumerate(rest) if x in ("|", "&&", ";", "||")), len(rest))
        rest = rest[:end]
        if rest[0] == "-m" and len(rest) > 1:
            found.append((f"-m {rest[1]}", rest[2:]))
        elif rest[0].endswith(".py"):
            found.append((rest[0], rest[1:]))
    return found


def _env() -> dict:
    return {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}


def _run(target: str, flag: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, *target.split(), flag]
    return subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)


@functools.cache
def defined_flags(script: str) -> frozenset[str]:
    """The long flags `script` accepts, read from its full help (absl) or help (argparse);
    absl booleans also as `no<name>`."""
    out = _run(script, "--helpfull")
    if out.returncode != 0:
        out = _run(script, "--help")
    assert out.returncode == 0, f"{script} --help(full) failed:\n{out.stdout}\n{out.stderr}"
    names = set()
    for line in out.stdout.splitlines():
        for neg, name in re.findall(r"^\s+(?:-\w, )?--(\[no\])?([A-Za-z][\w-]*)", line):
            names.add(name)
            if neg:
                names.add(f"no{name}")
    assert names, f"{script}: no flag found in its help"
    return frozenset(names)


def flag_uses() -> dict[str, set[tuple[str, str]]]:
    """script -> {(flag name, doc)} for every `--flag` of a fenced `python <script>.py` line."""
    uses: dict[str, set[tuple[str, str]]] = {}
    for doc in DOCS:
        for words in commands(doc):
            for script, args in python_invocations(words):
                if script.startswith("-m ") or not (ROOT / script).is_file():
                    continue
                for a in args:
                    m = re.match(r"^--([A-Za-z][\w-]*)", a)
                    if m and a not in HELP_ARGS:
                        uses.setdefault(script, set()).add((m.group(1), _rel(doc)))
    return uses


def help_targets() -> list[str]:
    """Scripts and `-m` modules that a fenced line runs with `--help`, each once."""
    targets = []
    for doc in DOCS:
        for words in commands(doc):
            for target, args in python_invocations(words):
                if "--help" in args and target not in targets:
                    targets.append(target)
    return targets


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))


def make_uses() -> set[tuple[str, str]]:
    uses = set()
    for doc in DOCS:
        prose, fenced = split_fences(doc.read_text(encoding="utf-8"))
        snippets = CODE_SPAN.findall("\n".join(prose)) + fenced
        for s in snippets:
            uses |= {(t, _rel(doc)) for t in MAKE.findall(s)}
    return uses


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert "README.md" in names and len(names) > 5, names


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_relative_links_resolve(doc):
    assert broken_links(doc) == []


def test_make_targets_exist():
    uses = make_uses()
    assert {"demo", "test"} <= {t for t, _ in uses}
    targets = make_targets()
    assert sorted(u for u in uses if u[0] not in targets) == []


def test_flags_in_commands_are_defined():
    uses = flag_uses()
    assert "train.py" in uses and "reproduce.py" in uses, sorted(uses)
    unknown = sorted(
        f"{doc}: python {script} --{name}"
        for script, found in uses.items()
        for name, doc in found
        if name not in defined_flags(script)
    )
    assert unknown == []


def test_help_commands_exit_zero():
    targets = help_targets()
    assert targets, "the docs show no --help command"
    for target in targets:
        out = _run(target, "--help")
        assert out.returncode == 0, f"python {target} --help: {out.returncode}\n{out.stderr}"
        assert "--" in out.stdout


SOURCES = [
    *sorted((ROOT / "asc_keras").rglob("*.py")),
    *sorted((ROOT / "tests").rglob("*.py")),
    *sorted((ROOT / "bench").rglob("*.py")),
    *sorted(ROOT.glob("*.py")),
]
CITATION = re.compile(r"SPEC\.md|\bissues?\s+#?\d+|\bissue\s+#\d+", re.IGNORECASE)


def test_no_citation_of_files_the_repository_lacks():
    hits = []
    for path in [*SOURCES, *DOCS]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if CITATION.search(line):
                hits.append(f"{_rel(path)}:{n}: {line.strip()}")
    assert hits == []


# The checks above must be able to fail: each is run on a broken copy of a page.


def test_checks_catch_broken_pages(tmp_path):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "other.md").write_text("# Other\n\n## Some `code` heading\n", encoding="utf-8")
    page.write_text(
        "# Page\n\n[ok](../other.md#some-code-heading) [gone](../missing.md)\n"
        "[bad anchor](../other.md#nothing) [self](#page) [web](https://example.org)\n\n"
        "```sh\npython train.py --flagfile=a --no_such_flag \\\n    --model_dir=x  # --commented\n"
        "make no-such-target\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "docs/page.md: ../missing.md (no such file)",
        "docs/page.md: ../other.md#nothing (no heading #nothing in other.md)",
    ]
    [words, make] = commands(page)
    assert python_invocations(words) == [
        ("train.py", ["--flagfile=a", "--no_such_flag", "--model_dir=x"])
    ]
    assert MAKE.findall(" ".join(make)) == ["no-such-target"]
    assert "no_such_flag" not in defined_flags("train.py")
    assert {"model_dir", "flagfile", "noexport_int8"} <= defined_flags("train.py")
    assert "no-such-target" not in make_targets()
    assert CITATION.search("see issue " + "12") and CITATION.search("as " + "SPEC" + ".md says")
