"""`python -m bridge [COMMAND] [options]`: the bridge's commands; without one, `serve`."""

import sys

from bridge.cli import main

sys.exit(main(sys.argv[1:], default_command="serve"))
