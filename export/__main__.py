import sys

from export.cli import main

if __name__ == "__main__":  # importing the module (tools, docs) must not run the CLI
    sys.exit(main())
