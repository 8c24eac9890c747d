"""Stdlib-only probe scripts, run by each cell's own interpreter (never imported by the harness).

Installed as the data package ``compat_matrix.probes`` so an installed harness finds them.
"""
