"""The first-start benchmark's command (bench/first_start.py): a wasi:cli/command component built
by componentize-py, i.e. a whole CPython interpreter in the guest. It prints one line and exits."""
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("hello from componentize-py")
        sys.stdout.flush()
