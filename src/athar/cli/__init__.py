"""The command-line face: parse, call a service, render. No logic of its own."""
