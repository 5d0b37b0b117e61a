"""Run the uploader as ``python -m uploader``."""

import sys

from uploader.cli import main

if __name__ == "__main__":
    sys.exit(main())
