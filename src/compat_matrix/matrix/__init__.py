"""The matrix file: load and validate it (`load`), its model (`model`), expand it into cells
with GitHub's rules (`expand`), and pick cells by id or pattern (`select`).
"""
