"""The front doors: the command line (`cli`), nox sessions (`nox_sessions`), the GitHub Action's
steps (`gha`) and the fan-out plan (`plan`). They only call the run and the reports.
"""
