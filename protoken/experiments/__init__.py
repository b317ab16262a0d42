"""`protoken eval`: the paper's experiments, reproduced through the real system.

Every experiment starts real server and client processes (`LocalFederation`), trains over gRPC
and attributes prompts through the probe protocol (`AttributionClient`); none takes a
single-process shortcut. Each writes ``results.json`` and PNG plots under its own directory.

Modules: `plan` (sizes, quick and full), `poisoning` (backdoored client data), `running` (a
federation to attribute against), `records` (per-prompt rows and accuracy), `results` (files
and plots), and one module per experiment.
"""
