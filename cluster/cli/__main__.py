"""``python -m cluster.cli``: the ``ssz`` command line."""

from cluster.cli import app

app()
