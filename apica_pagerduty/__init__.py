"""The `apica-pd` command: one entry point over the program, the bridge and the sandbox."""
