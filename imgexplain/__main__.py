"""``python -m imgexplain``: the ``imgexplain`` command."""
import sys

from imgexplain.cli import main

if __name__ == "__main__":
    sys.exit(main())
