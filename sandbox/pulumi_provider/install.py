"""Install the stand-in where the Pulumi engine looks for `pulumi-resource-pagerduty`.

    script = write_plugin_script(tmp_dir)
    pulumi plugin install resource pagerduty 4.37.0 --file <script>

or, from a shell: `python -m sandbox.pulumi_provider.install DIR` writes the script
and prints its path. The script runs this package with the interpreter that wrote
it (the project's venv), from the project root, so it works from any directory.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from sandbox.pulumi_provider import PACKAGE, PROVIDER_VERSION, STAND_IN

PLUGIN_NAME = f"pulumi-resource-{PACKAGE}"
# The project root: `sandbox` and `contract` import from here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write_plugin_script(directory: Path, python: str | None = None) -> Path:
    """Write the executable `pulumi-resource-pagerduty` into `directory`; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / PLUGIN_NAME
    interpreter = shlex.quote(python or sys.executable)
    root = shlex.quote(str(PROJECT_ROOT))
    script.write_text(
        "#!/bin/sh\n"
        f"# {STAND_IN}: not the real provider.\n"
        f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {interpreter} "
        '-m sandbox.pulumi_provider "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def install_arguments(script: Path) -> list[str]:
    """`pulumi` arguments that install `script` as the plugin the SDK asks for."""
    return ["plugin", "install", "resource", PACKAGE, PROVIDER_VERSION, "--file", str(script)]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            f"usage: python -m sandbox.pulumi_provider.install DIR  ({STAND_IN})", file=sys.stderr
        )
        return 2
    print(write_plugin_script(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
