"""``python -m offline.chaos``: run the fault campaign (see offline.chaos.campaign)."""

import sys

from offline.chaos.campaign import main

sys.exit(main())
