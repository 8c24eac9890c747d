"""Running cells: one cell end to end (`cell`), an existing environment (`audit`), and what an
upgrade would do to it (`whatif`).
"""
