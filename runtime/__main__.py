"""``python -m runtime`` is ``python -m runtime.live``."""

import sys

from runtime.live import main

if __name__ == "__main__":  # importing the module (tools, docs) must not run the CLI
    sys.exit(main())
