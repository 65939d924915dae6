"""Every code block of README.md and docs/*.md runs as written, or says why it does not.

The rules, by the block's language (the word after the opening fence):

- ``python``: the page's python blocks run in order in one namespace, like one script.
- ``bash``: each command (a line; ``\\`` joins lines, ``#`` starts a comment) runs.
  ``bidl ...`` runs in this process through ``bidl.cli.main`` and must exit 0. Any other
  program (pip, pytest, torchrun, ...) needs its block marked ``skip``.
- ``text``: not code (equations, printed output, folder layouts); nothing runs.
- no language: refused; say ``python``, ``bash`` or ``text``.

A block may be preceded by directives, one HTML comment each, right above its fence:

- ``<!-- docs-test: skip (REASON) -->``: not run; the reason is required.
- ``<!-- docs-test: file PATH -->``: the block is a file: it is written to PATH (in the
  folder the pages run in) for the blocks after it, and not run itself.
- ``<!-- docs-test: run-with ARGS -->``: ARGS are appended to each ``bidl`` command of the
  block that takes ARGS' first option. ``run-with tiny (...)`` stands for ``TINY`` below:
  one epoch on the first 64 DigitsDVS digits, so that trainings take seconds.

All pages run in one folder, as a reader's checkout (``configs``, ``tests`` and ``tools``
linked in): first ``SETUP`` (the README's main
job with ``TINY``), then each page from its top; the configs' ``data/digits_dvs`` is made
there once.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bidl.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: ``run-with tiny``: per option, what is appended where a command takes that option
TINY = {
    "--cfg-options": [
        "runner.max_epochs=1",
        "data.train.num_samples=64",
        "data.val.num_samples=64",
        "data.test.num_samples=64",
        "data.workers_per_gpu=0",
    ],
    "--set": ["num_samples=64"],
}
#: the state every page may assume: the README's main job, trained (with TINY)
SETUP = ["train", "clif3fc3dm_itout-b16x1-digitsdvs", "--cfg-options", *TINY["--cfg-options"]]

FENCE = re.compile(r"^```(\S*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
SHELL_SYNTAX = {"&&", "||", "|", ";", ">", ">>", "<", "2>", "&"}


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directives: list[str] = field(default_factory=list)

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def directive(self, name: str) -> list[str]:
        return [d[len(name) :].strip() for d in self.directives if d.split()[0] == name]


def read_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        directives, above = [], index - 1
        while above >= 0 and DIRECTIVE.match(lines[above].strip()):
            directives.insert(0, DIRECTIVE.match(lines[above].strip()).group(1))
            above -= 1
        text = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(page, index + 1, match.group(1), text, directives))
        index = end + 1
    return blocks


def problems_of(block: Block) -> list[str]:
    """What makes a block neither runnable nor explicitly exempt."""
    found = []
    if block.language not in ("python", "bash", "text"):
        found.append(f"fence language {block.language!r}: use python, bash or text")
    for directive in block.directives:
        name = directive.split()[0]
        if name not in ("skip", "file", "run-with"):
            found.append(f"unknown directive {directive!r}")
        elif name == "skip" and not re.fullmatch(r"skip \(.+\)", directive):
            found.append("skip needs a reason in parentheses: <!-- docs-test: skip (why) -->")
        elif name != "skip" and not directive[len(name) :].strip():
            found.append(f"{name} needs an argument")
    return found


def commands_of(block: Block) -> list[list[str]]:
    joined = re.sub(r"\\\n", " ", block.text)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def takes_option(argv: list[str], option: str) -> bool:
    """Whether the bidl subcommand of ``argv`` has the option ``option``."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # the subparsers
    sub = action.choices.get(argv[0]) if argv else None
    return sub is not None and option in sub._option_string_actions


def with_additions(argv: list[str], additions: list[str]) -> list[str]:
    """``argv`` with each ``run-with`` addition its subcommand takes."""
    for addition in additions:
        extra = []
        if addition.split()[0] == "tiny":
            for option, values in TINY.items():
                if takes_option(argv, option):
                    extra += [option, *values]
        else:
            words = shlex.split(addition)
            if takes_option(argv, words[0]):
                extra = words
        argv = [*argv, *extra]
    return argv


def run_bidl(argv: list[str], where: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help, and argparse's usage errors
            code = exit_.code or 0
    assert code == 0, f"{where}: `bidl {shlex.join(argv)}` exited {code}:\n{out.getvalue()}"
    return out.getvalue()


def run_block(block: Block, namespace: dict) -> None:
    if block.directive("skip") or block.language not in ("python", "bash"):
        return  # text; a block without a language fails the test above
    for path in block.directive("file"):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
    if block.directive("file"):
        return
    if block.language == "python":
        code = compile(block.text, block.where(), "exec")
        exec(code, namespace)  # noqa: S102 (the documentation's own snippets)
        return
    for words in commands_of(block):
        shell = SHELL_SYNTAX & set(words)
        assert not shell, f"{block.where()}: shell syntax {sorted(shell)}: mark the block skip"
        program = words[0]
        assert program == "bidl", (
            f"{block.where()}: `{program}` is not a bidl command: mark the block "
            f"<!-- docs-test: skip (reason) --> or run it another way"
        )
        run_bidl(with_additions(words[1:], block.directive("run-with")), block.where())


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory):
    """One folder for all pages, with the README's main job trained (``SETUP``)."""
    folder = tmp_path_factory.mktemp("reader")
    for name in ("configs", "tests", "tools"):  # a checkout: pages name files in these
        (folder / name).symlink_to(ROOT / name)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        run_bidl(SETUP, "SETUP")
        yield folder
    finally:
        os.chdir(previous)


def test_every_block_is_run_or_marked_with_a_reason():
    problems = [
        f"{block.where()}: {problem}"
        for page in PAGES
        for block in read_blocks(page)
        for problem in problems_of(block)
    ]
    assert not problems, "\n".join(problems)
    assert len([b for page in PAGES for b in read_blocks(page)]) > 50


def test_the_reader_tools_parse_directives_and_commands():
    page = ROOT / "tests" / "data" / "docs_test_example.md"
    blocks = read_blocks(page)
    assert [b.language for b in blocks] == ["bash", "text", "python"]
    assert blocks[0].directives == ["run-with tiny (one epoch)", "run-with --set num_samples=64"]
    assert commands_of(blocks[0]) == [
        ["bidl", "list", "models"],
        ["bidl", "train", "clif3fc3dm_itout-b16x1-digitsdvs", "--cfg-options", "a=1"],
        ["bidl", "data", "prepare", "digits_dvs", "--root", "data/digits_dvs"],
    ]
    additions = blocks[0].directive("run-with")
    assert with_additions(["list", "models"], additions) == ["list", "models"]
    assert with_additions(["data", "prepare", "x"], additions) == [
        "data", "prepare", "x", "--set", "num_samples=64", "--set", "num_samples=64"
    ]  # fmt: skip
    train = with_additions(["train", "c"], additions)
    assert train == ["train", "c", "--cfg-options", *TINY["--cfg-options"]]
    assert blocks[2].directive("skip") == ["(needs a GPU)"]
    assert problems_of(blocks[2]) == []
    bad = Block(page, 1, "", "x\n", ["skip", "later"])
    assert problems_of(bad) == [
        "fence language '': use python, bash or text",
        "skip needs a reason in parentheses: <!-- docs-test: skip (why) -->",
        "unknown directive 'later'",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_blocks_of_a_page_run(page, reader_folder):
    os.chdir(reader_folder)
    namespace = {"__name__": "__docs__"}
    for block in read_blocks(page):
        run_block(block, namespace)
