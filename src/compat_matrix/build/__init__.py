"""Building a cell's environment: interpreters (`pythons`), what to install (`requirements`, the
CUDA table in `cuda`), the backends behind one interface (`backends`), and what an installer's
failure means (`install_errors`); `platforms` says which runner a cell belongs on.
"""
