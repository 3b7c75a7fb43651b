"""Models with a training baseline for the drift tests, and their training-like data.

``mixed`` is a scikit-learn pipeline over four columns of every kind the baseline bins: ``a``
(normal), ``b`` (normal around 10), ``c`` (small integers: discrete) and ``d`` (colours:
categorical). ``numeric`` is a linear model over four doubles, served through the numeric fast
path (its requests reach the observers as a float matrix).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

COLOURS = ["red", "green", "blue"]
COLOUR_SHARES = [0.5, 0.3, 0.2]


def mixed_rows(rows: int, seed: int, b_shift: float = 0.0, colour_shares: list[float] = COLOUR_SHARES) -> pd.DataFrame:
    """Rows like the training data, optionally with ``b`` moved and other colour shares."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.normal(0.0, 1.0, rows),
        "b": rng.normal(10.0, 2.0, rows) + b_shift,
        "c": rng.integers(0, 4, rows),
        "d": rng.choice(COLOURS, rows, p=colour_shares),
    })


def save_mixed_model(path: Path, training: pd.DataFrame | None = None) -> Path:
    """The mixed-column pipeline, saved with a baseline of ``training`` (none when None)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from flavors.signature import infer_signature
    from flavors.sklearn import save_model

    frame = training if training is not None else mixed_rows(2000, seed=0)
    target = frame.a + 0.5 * frame.b + frame.c + (frame.d == "red")
    pipeline = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["d"]),
                                                     remainder="passthrough"), LinearRegression())
    save_model(pipeline.fit(frame, target), path, signature=infer_signature(frame, target), baseline_data=training)
    return path


def numeric_rows(rows: int, seed: int, shifted: str | None = None) -> pd.DataFrame:
    """Four standard normal doubles ``w``, ``x``, ``y``, ``z``; ``shifted`` moved by 2."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["w", "x", "y", "z"])
    if shifted:
        frame[shifted] += 2.0
    return frame


def save_numeric_model(path: Path) -> Path:
    """A linear model of the four doubles, with a baseline of 2000 training rows."""
    from sklearn.linear_model import LinearRegression

    from flavors.signature import infer_signature
    from flavors.sklearn import save_model

    frame = numeric_rows(2000, seed=0)
    target = frame.sum(axis=1)
    save_model(LinearRegression().fit(frame, target), path, signature=infer_signature(frame, target),
               baseline_data=frame)
    return path


def split(frame: pd.DataFrame) -> dict:
    """``frame`` as a ``dataframe_split`` request."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
