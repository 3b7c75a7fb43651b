"""Scoring with Spark: the server's pipeline (signature enforcement, prediction) as a pandas UDF.

``spark_udf(spark, model_uri)`` is the counterpart of ``mlflow.pyfunc.spark_udf``; ``run_predict_job``
is ``scoring-server predict --engine spark``. pyspark is imported only here (the ``spark`` extra).
"""
from __future__ import annotations

from .udf import spark_udf

__all__ = ["spark_udf"]
