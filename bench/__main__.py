"""``python -m bench``: every benchmark, as ``python -m bench.run``."""
import sys

from bench.run import main

sys.exit(main())
