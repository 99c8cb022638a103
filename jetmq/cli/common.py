"""What the command-line tools share: exit codes, the way they report errors, and the
connection a command talks to the cluster through.

A command imports only what it uses: this module imports nothing beyond
the standard library's ``sys`` at load time, so ``jet --version`` and ``jet --help``
cost docopt and no more, and a connection imports its client machinery on first use.
"""
from __future__ import annotations

import sys

RET_OK = 0
RET_ERROR = 1  # the command failed (Jet's exit code for every error)
RET_USAGE = 2  # the command line itself is wrong


class CommandError(Exception):
    """A command cannot do what was asked; the message is shown as Jet's ERROR line."""


def fail(message: str, code: int = RET_ERROR, verbose: bool = False) -> int:
    """Print ``message`` as Jet does (``ERROR: ...`` and a hint) to stderr; return ``code``.

    With ``verbose``, the current exception's traceback is printed instead of the hint.
    """
    from jetmq.formatting import format_error

    lines = format_error(message)
    if verbose:
        import traceback

        lines = [lines[0], traceback.format_exc().rstrip()]
    print("\n".join(lines), file=sys.stderr)
    return code


def parse_args(doc: str, argv: list[str] | None, version: str | None = None) -> dict:
    """docopt's parse of ``argv``; a usage error exits with RET_USAGE, not docopt's 1."""
    from docopt import DocoptExit, docopt

    try:
        return docopt(doc, argv=sys.argv[1:] if argv is None else argv, version=version)
    except DocoptExit as e:
        print(e, file=sys.stderr)
        raise SystemExit(RET_USAGE) from None


#: jet's options that take a value: the word after one is the option's, not a command or a file.
VALUED_OPTIONS = frozenset({"-n", "--name", "-s", "--snapshot", "--addresses", "--cluster-name", "--key-file"})


def split_script_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(jet's own words, the script's arguments): for ``submit``, everything after <file>
    belongs to the script, as Jet's CLI stops parsing at the job's file; a ``--`` before
    <file> ends jet's options. Any other command line is jet's alone."""
    positionals: list[str] = []
    words: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--" and positionals == ["submit"] and index + 1 < len(argv):
            return words + [argv[index + 1]], argv[index + 2:]
        words.append(word)
        if word in VALUED_OPTIONS and index + 1 < len(argv):
            words.append(argv[index + 1])
            index += 1
        elif not word.startswith("-") or word == "-":
            positionals.append(word)
            if positionals[0] != "submit":
                return argv, []
            if len(positionals) == 2:  # submit <file>
                return words, argv[index + 1:]
        index += 1
    return argv, []


class Connection:
    """The cluster a command talks to, reached on first use through what the command needs.

    ``requester`` sends bare protocol messages (all that ``list-jobs`` needs: no
    serialization, no DAG or pipeline modules); ``client`` is the full JetClient. Each
    connects when first used; both close on exit.
    """

    def __init__(self, addresses: list[str], key_file: str | None, cluster_name: str):
        self.addresses = addresses
        self.key_file = key_file
        self.cluster_name = cluster_name
        self._requester = None
        self._client = None

    @property
    def requester(self):
        """A Requester presenting the key a JetClient of the same arguments would present."""
        if self._requester is None:
            from jetmq import clusterkey
            from jetmq.requester import Requester

            self._requester = Requester(self.addresses, key=clusterkey.client_key(self.key_file, self.cluster_name))
        return self._requester

    @property
    def client(self):
        if self._client is None:
            from jetmq.client import JetClient

            self._client = JetClient(self.addresses, key_file=self.key_file, cluster_name=self.cluster_name)
        return self._client

    def close(self) -> None:
        for part in (self._requester, self._client):
            if part is not None:
                part.close()
        self._requester = self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
