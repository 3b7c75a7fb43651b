"""The differential corpus: generated requests sent to `mlflow models serve` and to scoring-server."""
