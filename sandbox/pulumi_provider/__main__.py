"""The plugin executable: `python -m sandbox.pulumi_provider [engine flags] <engine address>`.

The engine starts a resource plugin with its own flags (`--logtostderr`, `-v=N`,
`--tracing ENDPOINT`) before the engine's gRPC address, and reads the port the
plugin serves on from the first line of standard output.
"""

from __future__ import annotations

import argparse
import os
import sys

from sandbox.pulumi_provider import CALL_LOG_ENV, STAND_IN
from sandbox.pulumi_provider.rest import log_calls_to
from sandbox.pulumi_provider.server import serve_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pulumi-resource-pagerduty", description=STAND_IN)
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("-v", dest="verbosity", default="0")
    parser.add_argument("--tracing")
    parser.add_argument("engine_address", nargs="?")
    options, _unknown = parser.parse_known_args(argv)
    log_calls_to(os.environ.get(CALL_LOG_ENV))
    serve_forever(options.engine_address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
