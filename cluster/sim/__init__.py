"""The simulation room: a simulated day of a city with exact ground truth, streamed through the real product
and measured against that truth (``ssz demo``, ``ssz eval``).

* :mod:`cluster.sim.scenario`: people, crowd and vehicles moving on the street graph; who each camera sees;
* :mod:`cluster.sim.fielddata`: the one generator of synthetic field data (patrol pings, QR scans, SOS, demo
  alerts and risk points);
* :mod:`cluster.sim.paths`: moving on the street graph;
* :mod:`cluster.sim.city`: what to simulate (:class:`~cluster.sim.city.SimConfig`) and the day built on a city;
* :mod:`cluster.sim.scripts`: ground truth -> the scripts the rendered cameras play;
* :mod:`cluster.sim.run`: enrol the lists, stream the rendered cameras, commit the field data to the twin;
* :mod:`cluster.sim.evaluation`, :mod:`cluster.sim.result`, :mod:`cluster.sim.report`: alerts against ground
  truth, the measured value, the report.
"""
