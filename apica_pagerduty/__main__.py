import sys

from apica_pagerduty.cli import main

sys.exit(main())
