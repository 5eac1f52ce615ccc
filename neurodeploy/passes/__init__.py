"""Conversion passes (the compiler): each takes the IR (and the target) and returns a result
with a report. ``quantize``: float -> Loihi 2 fixed point; ``partition``: populations onto cores."""
