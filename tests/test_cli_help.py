"""`--help` of every verb says only what exists: each option a help text cites (`--output`, or
`archive submit --output`) is an option of the whole command, spelled out (argparse would also take an
abbreviation such as `--out`, so a help text citing one would work by accident and mislead), and a
citation naming a verb names one of that verb's options."""

from __future__ import annotations

import argparse
import re

import pytest

from affectstream.pipeline.cli.main import _verbs, build_parser

OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _path(parser: argparse.ArgumentParser) -> str:
    return parser.prog.removeprefix("affectstream").strip()


@pytest.fixture(scope="module")
def verbs() -> dict[str, argparse.ArgumentParser]:
    return {_path(p): p for p in _verbs(build_parser())}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def test_there_are_verbs_to_check(verbs):
    assert {"run", "demo", "render", "tail", "archive submit", "archive submission", "evaluate-abaw"} <= set(
        verbs
    )


def test_every_cited_option_exists_by_its_full_name(verbs):
    everywhere = set().union(*(_options(p) for p in verbs.values())) | {"--help", "--version"}
    wrong = []
    for name, parser in verbs.items():
        for cited in OPTION.findall(parser.format_help()):
            if cited not in everywhere:
                wrong.append(f"`affectstream {name} --help` cites {cited}, which no verb has")
    assert not wrong, "\n".join(wrong)


def test_a_citation_of_a_verb_names_that_verb_s_option(verbs):
    names = sorted(verbs, key=len, reverse=True)  # `archive submit` before `archive`
    cite = re.compile(r"`(?:affectstream )?(" + "|".join(map(re.escape, names)) + r")((?: [^`]*)?)`")
    wrong = []
    for name, parser in verbs.items():
        for verb, rest in cite.findall(parser.format_help().replace("\n", " ")):
            for option in OPTION.findall(rest):
                if option not in _options(verbs[verb]):
                    wrong.append(
                        f"`affectstream {name} --help` cites `{verb} {option}`; {verb} has no {option}"
                    )
    assert not wrong, "\n".join(wrong)
