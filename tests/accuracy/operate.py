"""Run one real operation of a framework and print its result (ground truth, not a probe).

Run by ``ground_truth.py`` with the cell's own interpreter, from an empty directory:
``python operate.py jax|tensorflow|scikit-learn|torch|pandas``. Exit status 0 and the expected
value on stdout means the framework installed, imported and computed.
"""

import sys


def jax() -> object:
    import jax.numpy as jnp

    return float(jnp.ones(3).sum())


def tensorflow() -> object:
    import tensorflow as tf

    return int(tf.constant(1) + 1)


def scikit_learn() -> object:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 2.0]))
    return round(float(model.coef_[0]), 6)


def torch() -> object:
    import torch

    return float(torch.ones(2) @ torch.ones(2))


def pandas() -> object:
    import pandas as pd

    return int(pd.DataFrame({"a": [1, 2]})["a"].sum())


OPERATIONS = {
    "jax": (jax, 3.0),
    "tensorflow": (tensorflow, 2),
    "scikit-learn": (scikit_learn, 1.0),
    "torch": (torch, 2.0),
    "pandas": (pandas, 3),
}

if __name__ == "__main__":
    operation, expected = OPERATIONS[sys.argv[1]]
    value = operation()
    print(repr(value))
    sys.exit(0 if value == expected else 1)
