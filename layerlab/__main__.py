"""``python -m layerlab``: the same as the ``layerlab`` command."""
import sys

from layerlab import main

if __name__ == "__main__":
    sys.exit(main())
