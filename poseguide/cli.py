"""Command-line front ends: `poseguide <command>` and `generate`.

Each command's arguments live in one `_add_<command>` function, and its work in the
module named after it, so this file stays a table of contents. Errors a user can fix
(bad input, missing files) are raised as `UserError` and printed as one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="photos/videos -> a clean training set")
    p.set_defaults(func=lambda args: _todo("prepare"))


def _add_pose(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pose", help="write one person's pose from a photo as a keypoints file")
    p.set_defaults(func=lambda args: _todo("pose"))


def _add_show(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="contact sheet of a prepared dataset")
    p.set_defaults(func=lambda args: _todo("show"))


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (same as `accelerate launch scripts/train.py`)")
    p.set_defaults(func=lambda args: _todo("train"))


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="draw the trained person, posed or at random")
    p.set_defaults(func=lambda args: _todo("generate"))


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model: pose fidelity, realism, reconstruction")
    p.set_defaults(func=lambda args: _todo("evaluate"))


def _todo(name: str) -> int:
    raise UserError(f"`{name}` is not available yet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poseguide", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_prepare, _add_pose, _add_show, _add_train, _add_generate, _add_evaluate):
        add(sub)
    return parser


def run(argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(argv, build_parser())


def generate_main(argv: list[str] | None = None) -> int:
    """The `generate` console script: `poseguide generate` without the word `poseguide`."""
    parser = argparse.ArgumentParser(prog="generate")
    sub = parser.add_subparsers(dest="command")
    _add_generate(sub)
    return run(["generate", *(sys.argv[1:] if argv is None else argv)], parser)


if __name__ == "__main__":
    sys.exit(main())
