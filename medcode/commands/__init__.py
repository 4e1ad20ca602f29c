"""Subcommands of the `medcode` console script that sit at the edge of the lower packages.

`data/` and `model/` never read settings; their commands live here, read the one settings object and pass
what the library needs down as arguments.
"""
