"""``python -m runtime`` is ``python -m runtime.live``."""

import sys

from runtime.live import main

sys.exit(main())
