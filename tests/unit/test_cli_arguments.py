"""How `jet` splits its own command line from the arguments of a submitted script."""
import pytest

from jetmq.cli.common import split_script_arguments


@pytest.mark.parametrize("argv,own,script", [
    # everything after <file> is the script's, options that look like jet's included
    (["submit", "job.py", "--input", "books/", "-n", "3"], ["submit", "job.py"], ["--input", "books/", "-n", "3"]),
    (["submit", "-n", "wc", "job.py", "-v", "--", "x"], ["submit", "-n", "wc", "job.py"], ["-v", "--", "x"]),
    # jet's options, before the command and before <file>, stay jet's (a value is never taken for <file>)
    (["--addresses", "h:1", "submit", "-s", "snap", "--name", "job.py", "job.py", "a"],
     ["--addresses", "h:1", "submit", "-s", "snap", "--name", "job.py", "job.py"], ["a"]),
    (["-v", "submit", "--name=x", "job.py"], ["-v", "submit", "--name=x", "job.py"], []),
    # a -- before <file> ends jet's options: the next word is the file, even if it looks like an option
    (["submit", "-n", "x", "--", "--odd-name.py", "-a"], ["submit", "-n", "x", "--odd-name.py"], ["-a"]),
    # other commands are jet's alone, and so is a submit without a file (docopt reports it)
    (["list-jobs", "-a"], ["list-jobs", "-a"], []),
    (["cancel", "submit"], ["cancel", "submit"], []),
    (["submit"], ["submit"], []),
    (["submit", "-n"], ["submit", "-n"], []),
])
def test_everything_after_the_submitted_file_belongs_to_the_script(argv, own, script):
    assert split_script_arguments(argv) == (own, script)
