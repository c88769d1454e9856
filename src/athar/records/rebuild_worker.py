"""Entry point of the rebuild's two child processes, the reader and the decoder.

A module of its own because athar.records.rebuild is compiled (setup.py), and
`python -m` cannot run a compiled module."""

import sys

from athar.records.rebuild import decoder_main, reader_main

if __name__ == "__main__":
    (decoder_main if sys.argv[1:] == ["decode"] else reader_main)()
