"""The workbench beside the runtime: the programs people run on a development machine.

The `depth-estimation` command line (`cli`), the demo (`demo`), offline prediction (`predict`),
the backend benchmark (`benchmark`), the player, the MCAP recorder and the simulated camera.
They may use every other package; nothing in the runtime (`ros`, `pipeline`, `inference`,
`model`) or in `training` imports them.
"""
