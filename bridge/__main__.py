"""`python -m bridge [serve options]` is `apica-pd serve`."""

import sys

from apica_pagerduty.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
