"""Ray Serve applications: face model, plate model, watchlist/hotlist, HTTP API.

torch's OpenMP threads spin while they wait for work (``OMP_WAIT_POLICY=ACTIVE`` behaviour). On a shared CPU node
(camera shards, Serve replicas and other jobs on the same cores) a spinning thread holds a core its partner needs:
measured on a loaded 2-core machine, the plate recogniser read 3 plates/s at batch 16 with two spinning threads and
40 plates/s with ``PASSIVE`` waits. OpenMP reads the variable when torch first loads, so it is set here, before
anything in ``serve`` imports torch; a user's explicit setting wins.

Sleeping at once costs a wake-up at every layer, though: on a quiet 2-core machine the recogniser read 266 plates/s
at batch 16 (33 at batch 1) with ``PASSIVE`` alone. ``GOMP_SPINCOUNT=5000`` (GNU OpenMP, the runtime torch's CPU
wheels ship) lets a waiting thread spin that many polls before it sleeps, enough to bridge the gap between two
layers and too short to hold a core another process needs: 450 plates/s quiet (150 at batch 1), and 146 with two
busy processes on the 2 cores, where ``PASSIVE`` alone read 98. Longer spins collapse under load (20,000: 95;
100,000: 19 plates/s). Measured with :func:`serve.plate.bench.bench_engine` (32 mild plates, the stage-9 network),
2026-12-02. It is set only beside ``PASSIVE`` waits: an explicit spin count overrides the wait policy's own (libgomp's
``GOMP_SPINCOUNT``), so a user's ``OMP_WAIT_POLICY=ACTIVE`` would otherwise sleep after 5000 polls too.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if _os.environ["OMP_WAIT_POLICY"].strip().upper() == "PASSIVE":  # beside a user's ACTIVE it would cap the spin
    _os.environ.setdefault("GOMP_SPINCOUNT", "5000")
