"""The Lava process that hosts the torch part of a hybrid run (:mod:`..hybrid`).

A package of its own because Lava's ProcessModel discovery executes every module in a Process's
directory under its bare name: only ``process.py`` and ``models.py`` (absolute imports, no side
effects) live here. Importing this package imports neither Lava nor torch.
"""
