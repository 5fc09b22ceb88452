"""The contract between the two lanes: what infra/ hands the bridge, and the words both use.

    infra/  (stack file -> model -> Pulumi program)  --writes-->  routes file
    bridge/ (socket -> intake -> store -> sender)    --reads-->   routes file

Both sides import this package and nothing of each other. It holds the routes-file
model and its reader/writer (`contract.routes_file`), the shared vocabulary
(`contract.vocabulary`: severities, actions, urgencies, key and claim shapes, Events
API limits), key redaction (`contract.redact`), the one bounded file reader
(`contract.files`) and the root of every error the project raises on purpose
(`contract.errors`).
"""
