"""The Spark type of a model's predictions, derived from its output signature.

One output (a tensor, or a single column) is a scalar (or an array for a tensor of more than one
dimension); several named outputs are a struct with one field per output. Without an output
signature it is ``double``, as in ``mlflow.pyfunc.spark_udf``.
"""
from __future__ import annotations

import numpy as np
from pyspark.sql import types as T

from flavors.signature import (
    ArrayType,
    ColSpec,
    MapType,
    ObjectType,
    ScalarType,
    Schema,
    TensorSpec,
)

_SCALARS: dict[str, T.DataType] = {
    "double": T.DoubleType(), "float": T.FloatType(), "long": T.LongType(), "integer": T.IntegerType(),
    "string": T.StringType(), "boolean": T.BooleanType(), "binary": T.BinaryType(),
    "datetime": T.TimestampType(),
}


class ResultTypeError(ValueError):
    """The output signature has no Spark equivalent: the caller must give ``result_type``."""


def result_type_of(outputs: Schema | None) -> T.DataType:
    """The Spark type of one row's predictions for a model whose output schema is ``outputs``."""
    if outputs is None or not outputs.specs:
        return T.DoubleType()
    specs = outputs.specs
    if len(specs) == 1:
        return _spec_type(specs[0])
    if not outputs.has_input_names:
        raise ResultTypeError("the model has several unnamed outputs: give result_type")
    return T.StructType([T.StructField(spec.name, _spec_type(spec)) for spec in specs])


def _spec_type(spec: ColSpec | TensorSpec) -> T.DataType:
    if isinstance(spec, TensorSpec):
        element = _dtype_type(spec.dtype)
        for _ in spec.shape[1:]:  # the first dimension is the rows
            element = T.ArrayType(element)
        return element
    return _data_type(spec.type)


def _data_type(kind) -> T.DataType:
    if isinstance(kind, ScalarType) and kind.name in _SCALARS:
        return _SCALARS[kind.name]
    if isinstance(kind, ArrayType):
        return T.ArrayType(_data_type(kind.items))
    if isinstance(kind, ObjectType):
        return T.StructType([T.StructField(p.name, _data_type(p.type), not p.required) for p in kind.properties])
    if isinstance(kind, MapType):
        return T.MapType(T.StringType(), _data_type(kind.values))
    raise ResultTypeError(f"no Spark type for the output type {kind}: give result_type")


def _dtype_type(dtype: np.dtype) -> T.DataType:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return T.FloatType() if dtype.itemsize == 4 else T.DoubleType()
    if dtype.kind in "iu":
        return T.LongType() if dtype.itemsize == 8 or dtype.kind == "u" else T.IntegerType()
    if dtype.kind == "b":
        return T.BooleanType()
    if dtype.kind == "M":
        return T.TimestampType()
    if dtype.kind == "S":
        return T.BinaryType()
    return T.StringType()
