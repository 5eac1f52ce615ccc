"""Bounds checked before anything is allocated (specs, data files, interchange files).

They live here, below the IR, because the readers of users' files (``core.data``) check them
before an IR exists; :mod:`neurodeploy.ir.nodes` re-exports them.
"""

MAX_POPULATION_SIZE = 10_000_000
MAX_TOTAL_NEURONS = 50_000_000
MAX_STEPS = 1_000_000_000
MAX_DENSE_SYNAPSES = 1_000_000_000
MAX_ARRAY_ELEMENTS = 200_000_000
