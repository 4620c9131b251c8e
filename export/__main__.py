from export.cli import main
from runtime.cli import exit_with

if __name__ == "__main__":  # importing the module (tools, docs) must not run the CLI
    exit_with(main, "python -m export")
