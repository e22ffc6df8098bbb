"""The ``imgexplain`` command (``python -m imgexplain``, and the ``imgexplain`` script).

The command's modules are imported inside :func:`main`, so that Ctrl-C while they load (numpy, Pillow,
the explainers: about a second) is one line and exit status 130, as Ctrl-C during a run is.
"""
import importlib
import sys


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        cli = importlib.import_module("imgexplain.cli")
    except KeyboardInterrupt:
        print("imgexplain: interrupted", file=sys.stderr)
        return 130
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
