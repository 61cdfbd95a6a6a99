"""Entry point of ``python -m bench`` (``make bench``)."""

import sys

from bench.run import main

sys.exit(main())
