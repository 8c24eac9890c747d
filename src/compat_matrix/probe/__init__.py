"""Running the stdlib-only probe scripts (probes/) inside a cell's environment (`runner`) and
combining their findings into one verdict (`verdicts`).
"""
