"""Ray Serve applications: face model, plate model, watchlist/hotlist, HTTP API.

torch's OpenMP threads spin while they wait for work (``OMP_WAIT_POLICY=ACTIVE`` behaviour). On a shared CPU node
(camera shards, Serve replicas and other jobs on the same cores) a spinning thread holds a core its partner needs:
measured on a loaded 2-core machine, the plate recogniser read 3 plates/s at batch 16 with two spinning threads and
40 plates/s with ``PASSIVE`` waits. OpenMP reads the variable when torch first loads, so it is set here, before
anything in ``serve`` imports torch; a user's explicit setting wins.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
