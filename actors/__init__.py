"""Ray actors of the camera pipeline: camera sources, camera shards (decode, motion gate, sample, detect,
track, confirm), the detectors they call, the typed events they send, and the alert sink with its channels.

Every named actor of the product lives in the Ray namespace :data:`RAY_NAMESPACE`.
"""

RAY_NAMESPACE = "ssz"
