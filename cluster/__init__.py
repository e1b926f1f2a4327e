"""City and zone config, camera registry, sharding, store and Ray wiring, the `ssz` CLI.

Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is first imported: with ``0`` every address
on this machine (GCS, raylets, the driver's own) is 127.0.0.1, so a local cluster binds to loopback only
and ``ray.init(address="127.0.0.1:…")`` is not rewritten to the machine's network address. It is set here,
before anything can import Ray; a user's explicit setting wins. torch's OpenMP waits (``OMP_WAIT_POLICY``,
``GOMP_SPINCOUNT``: see :mod:`serve`) are set by importing :mod:`serve` first, for the driver and the Ray workers it
starts.
"""

import os as _os

_os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
_os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import serve as _serve  # noqa: F401  (sets torch's OpenMP waits before anything imports torch)
