"""Target-vs-reference validation: metrics, tolerances and the readable report."""
