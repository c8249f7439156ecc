"""``python -m loopviz`` is the ``loopviz`` command."""

import sys

from loopviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
