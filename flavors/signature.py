"""Model signatures: the typed contract stored under ``signature:`` in ``MLmodel``.

MLflow writes ``inputs``, ``outputs`` and ``params`` as JSON strings. Inputs and outputs
are either column-based (a list of named, typed columns) or tensor-based (a list of
dtype/shape specs). This module parses and writes that format and infers a signature from
example data; enforcing it on requests lives in ``scoring_server.schema``.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

# Scalar column types and the numpy dtype each one is held in.
SCALAR_DTYPES: dict[str, Any] = {
    "boolean": np.dtype(bool),
    "integer": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "string": np.dtype(object),
    "binary": np.dtype(object),
    "datetime": np.dtype("datetime64[ns]"),
}


class SignatureError(ValueError):
    """The ``signature`` section of an ``MLmodel`` file is malformed."""


@dataclass(frozen=True)
class ScalarType:
    """One of MLflow's scalar types (``double``, ``string``, ...)."""

    name: str

    def to_dict(self) -> dict:
        return {"type": self.name}

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArrayType:
    """``{"type": "array", "items": <type>}``."""

    items: "DataType"

    def to_dict(self) -> dict:
        return {"type": "array", "items": self.items.to_dict()}

    def __str__(self) -> str:
        return f"Array({self.items})"


@dataclass(frozen=True)
class ObjectType:
    """``{"type": "object", "properties": {name: <type> + required}}``."""

    properties: tuple["Property", ...]

    def to_dict(self) -> dict:
        return {"type": "object", "properties": {p.name: p.to_dict() for p in self.properties}}

    def __str__(self) -> str:
        inner = ", ".join(f"{p.name}: {p.type}" for p in self.properties)
        return f"Object({inner})"


@dataclass(frozen=True)
class MapType:
    """``{"type": "map", "values": <type>}`` with string keys."""

    values: "DataType"

    def to_dict(self) -> dict:
        return {"type": "map", "values": self.values.to_dict()}

    def __str__(self) -> str:
        return f"Map(str -> {self.values})"


@dataclass(frozen=True)
class AnyType:
    """``{"type": "any"}``: anything goes."""

    def to_dict(self) -> dict:
        return {"type": "any"}

    def __str__(self) -> str:
        return "Any"


DataType = Union[ScalarType, ArrayType, ObjectType, MapType, AnyType]


@dataclass(frozen=True)
class Property:
    """A named field of an :class:`ObjectType`."""

    name: str
    type: DataType
    required: bool = True

    def to_dict(self) -> dict:
        return {**self.type.to_dict(), "required": self.required}


@dataclass(frozen=True)
class ColSpec:
    """A column of a column-based schema; ``name`` is None for unnamed columns."""

    type: DataType
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict:
        out = self.type.to_dict()
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True)
class TensorSpec:
    """A tensor of a tensor-based schema; ``-1`` in ``shape`` matches any size."""

    dtype: np.dtype
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict:
        # MLflow writes the dtype's name ("str", not "<U0") and the name first.
        named = {"name": self.name} if self.name is not None else {}
        return {**named, "type": "tensor", "tensor-spec": {"dtype": self.dtype.name, "shape": list(self.shape)}}


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter: ``shape`` None for a scalar, ``(-1,)`` for a list."""

    name: str
    type: ScalarType
    default: Any = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "default": self.default,
            "shape": list(self.shape) if self.shape is not None else None,
            "type": self.type.name,
        }


@dataclass(frozen=True)
class Schema:
    """An ordered list of column specs or of tensor specs (never mixed)."""

    specs: tuple[Union[ColSpec, TensorSpec], ...]

    @property
    def is_tensor_spec(self) -> bool:
        return bool(self.specs) and isinstance(self.specs[0], TensorSpec)

    @property
    def has_input_names(self) -> bool:
        return bool(self.specs) and all(spec.name is not None for spec in self.specs)

    def input_names(self) -> list[str]:
        return [spec.name for spec in self.specs if spec.name is not None]

    def required_input_names(self) -> list[str]:
        return [s.name for s in self.specs if s.name is not None and getattr(s, "required", True)]

    def to_json(self) -> str:
        return json.dumps([spec.to_dict() for spec in self.specs])


@dataclass(frozen=True)
class ParamSchema:
    """The model's declared inference parameters."""

    params: tuple[ParamSpec, ...]

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def to_json(self) -> str:
        return json.dumps([p.to_dict() for p in self.params])


@dataclass(frozen=True)
class ModelSignature:
    """Inputs, outputs and params of a model; any part may be absent."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = None

    @classmethod
    def from_mlmodel(cls, section: dict | None) -> "ModelSignature | None":
        """Parse the ``signature:`` section of ``MLmodel`` (JSON strings); None if absent."""
        if not section:
            return None
        if not isinstance(section, dict):
            raise SignatureError("the signature section must be a mapping")
        return cls(
            inputs=_parse_schema(section.get("inputs"), "inputs"),
            outputs=_parse_schema(section.get("outputs"), "outputs"),
            params=_parse_param_schema(section.get("params")),
        )

    def to_mlmodel(self) -> dict:
        """The ``signature:`` section as MLflow writes it."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }


def parse_data_type(spec: dict, where: str) -> DataType:
    """Parse one type description (scalar name or nested array/object/map/any)."""
    kind = spec.get("type")
    if kind in SCALAR_DTYPES:
        return ScalarType(kind)
    if kind == "array":
        return ArrayType(parse_data_type(_require(spec, "items", where), where))
    if kind == "object":
        props = _require(spec, "properties", where)
        return ObjectType(
            tuple(
                Property(name, parse_data_type(p, f"{where}.{name}"), bool(p.get("required", True)))
                for name, p in sorted(props.items())
            )
        )
    if kind == "map":
        return MapType(parse_data_type(_require(spec, "values", where), where))
    if kind == "any":
        return AnyType()
    raise SignatureError(f"unknown type {kind!r} in {where}")


def _require(spec: dict, key: str, where: str) -> Any:
    if key not in spec:
        raise SignatureError(f"{where}: type {spec.get('type')!r} needs {key!r}")
    return spec[key]


def _parse_schema(text: str | None, where: str) -> Schema | None:
    if text is None:
        return None
    specs = _load_json_list(text, where)
    parsed = tuple(_parse_spec(spec, f"{where}[{i}]") for i, spec in enumerate(specs))
    if len({type(s) for s in parsed}) > 1:
        raise SignatureError(f"{where} mixes column and tensor specs")
    return Schema(parsed)


def _parse_spec(spec: dict, where: str) -> Union[ColSpec, TensorSpec]:
    if not isinstance(spec, dict):
        raise SignatureError(f"{where} must be an object")
    if spec.get("type") == "tensor":
        tensor = _require(spec, "tensor-spec", where)
        try:
            dtype = np.dtype(tensor["dtype"])
        except (KeyError, TypeError) as exc:
            raise SignatureError(f"{where}: bad tensor dtype {tensor.get('dtype')!r}") from exc
        return TensorSpec(dtype, tuple(int(d) for d in tensor.get("shape") or ()), spec.get("name"))
    # Signatures written by MLflow 1.x have no "required": columns are then required.
    return ColSpec(parse_data_type(spec, where), spec.get("name"), bool(spec.get("required", True)))


def _parse_param_schema(text: str | None) -> ParamSchema | None:
    if text is None:
        return None
    params = []
    for i, spec in enumerate(_load_json_list(text, "params")):
        kind = parse_data_type(spec, f"params[{i}]")
        if not isinstance(kind, ScalarType) or "name" not in spec:
            raise SignatureError(f"params[{i}] must be a named scalar type")
        shape = spec.get("shape")
        params.append(ParamSpec(spec["name"], kind, spec.get("default"), tuple(shape) if shape is not None else None))
    return ParamSchema(tuple(params))


def _load_json_list(text: str, where: str) -> list:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise SignatureError(f"signature {where} is not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise SignatureError(f"signature {where} must be a JSON list")
    return value


# --- inference from example data (used by the save API) ---------------------------------
# A port of MLflow 3's ``mlflow.types.utils._infer_schema`` and ``_infer_param_schema``, so that a
# model saved here with an input example gets the signature MLflow's own save would write.


class SignatureInferenceError(ValueError):
    """The example data has no MLflow type (mixed types in a list, an unsupported object, ...)."""


def infer_signature(model_input: Any, model_output: Any = None, params: dict | None = None) -> ModelSignature:
    """Infer a signature from example input, output and params, as MLflow's ``infer_signature`` does."""
    return ModelSignature(
        inputs=infer_schema(model_input),
        outputs=infer_schema(model_output) if model_output is not None else None,
        params=infer_param_schema(params) if params else None,
    )


def infer_schema(data: Any) -> Schema:
    """The schema MLflow infers for ``data``: tensors for arrays, columns for everything else."""
    if isinstance(data, list) and not data:  # MLflow < 2.9 compatibility, kept by MLflow 3
        return Schema((ColSpec(ScalarType("string")),))
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return _records_schema(data)
    if isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        return Schema(tuple(_tensor_spec(array, name) for name, array in data.items()))
    if isinstance(data, dict):
        if not all(isinstance(key, str) for key in data):
            raise SignatureInferenceError("the dictionary keys are not all strings")
        return Schema(tuple(ColSpec(_colspec_type(v), name, _required(v)) for name, v in data.items()))
    if isinstance(data, pd.Series):
        return Schema((ColSpec(_column_type(data), data.name, _required(data)),))
    if isinstance(data, pd.DataFrame):
        return Schema(tuple(ColSpec(_column_type(data[c]), c, _required(data[c])) for c in data.columns))
    if isinstance(data, np.ndarray):
        return Schema((_tensor_spec(data),))
    if isinstance(data, list):
        return Schema((ColSpec(_colspec_type(data).items),))
    return Schema((ColSpec(_colspec_type(data)),))


def _records_schema(records: list[dict]) -> Schema:
    """Columns of a list of dicts; a column missing or null in some record is not required."""
    columns: dict[Any, list] = {}
    for record in records:
        for key, value in record.items():
            columns.setdefault(key, []).append(value)
    return Schema(tuple(
        ColSpec(_colspec_type(values).items, name, all(r.get(name) is not None for r in records))
        for name, values in columns.items()
    ))


def _tensor_spec(array: np.ndarray, name: str | None = None) -> TensorSpec:
    """Any number of rows; strings and bytes without their length (MLflow's ``clean_tensor_type``)."""
    dtype = {"U": np.dtype("str"), "S": np.dtype("bytes")}.get(array.dtype.char, array.dtype)
    return TensorSpec(dtype, (-1, *array.shape[1:]), name)


def _is_missing(value: Any) -> bool:
    if isinstance(value, float):
        return bool(np.isnan(value))
    return value is None or value is pd.NA or value is pd.NaT


def _required(value: Any) -> bool:
    if isinstance(value, (list, pd.Series)):
        return not any(_is_missing(v) for v in value)
    return not _is_missing(value)


def _colspec_type(data: Any) -> DataType:
    kind = _infer_datatype(data)
    if kind is None:
        raise SignatureInferenceError(f"cannot infer a type from an empty array: {data!r}")
    return kind


def _column_type(column: pd.Series) -> DataType:
    if column.dtype.kind == "O":
        column = column.infer_objects()
    if column.dtype.kind != "O":
        return _numpy_type(column.dtype)
    try:
        return _colspec_type(column.to_list()).items
    except SignatureInferenceError:
        if pd.api.types.is_string_dtype(column):
            return ScalarType("string")
        raise


def _numpy_type(dtype: Any) -> ScalarType:
    """The MLflow type of a numpy dtype or pandas extension dtype."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return ScalarType("boolean")
    if kind in "iu" and (size < 4 or (kind == "i" and size == 4)):
        return ScalarType("integer")
    if kind in "iu" and (size < 8 or (kind == "i" and size == 8)):
        return ScalarType("long")
    if kind == "f" and size <= 8:
        return ScalarType("float" if size <= 4 else "double")
    names = {"U": "string", "S": "binary", "M": "datetime"}
    if kind in names:
        return ScalarType(names[kind])
    raise SignatureInferenceError(f"unsupported numpy data type {dtype}")


def _infer_datatype(data: Any) -> DataType | None:
    """None, NaN, ``[]`` and ``{}`` are ``any``; an empty numpy array has no type (None)."""
    if _is_missing(data) or (isinstance(data, (list, dict)) and not data):
        return AnyType()
    if isinstance(data, dict):
        properties = []
        for key, value in data.items():
            kind = _infer_datatype(value)
            if kind is None:
                raise SignatureInferenceError("a dictionary value must not be an empty numpy array")
            properties.append(Property(key, kind, not isinstance(kind, AnyType)))
        return ObjectType(tuple(sorted(properties, key=lambda p: p.name)))
    if isinstance(data, (list, np.ndarray)):
        return _array_type(data)
    return _scalar_type(data)


def _array_type(items: Any) -> ArrayType | None:
    """The type of a homogeneous list; items of undetermined type are skipped."""
    result: DataType | None = None
    for item in items:
        kind = _infer_datatype(item)
        if kind is None:
            continue
        if result is None:
            result = kind
        elif isinstance(result, ScalarType):
            if not isinstance(kind, AnyType) and kind != result:
                raise SignatureInferenceError("a list or array mixes types; every item must have the same type")
        else:
            result = _merge(result, kind)
    return None if result is None else ArrayType(result)


def _merge(first: DataType, second: DataType) -> DataType:
    """The type of items seen as ``first`` and then ``second`` (as MLflow's ``_merge`` methods)."""
    if isinstance(first, AnyType):
        return second if isinstance(second, AnyType) else _optional(second)
    if isinstance(second, AnyType):
        return _optional(first)
    if first == second:
        return first
    if isinstance(first, ArrayType) and isinstance(second, ArrayType):
        if isinstance(first.items, ScalarType) and not isinstance(second.items, AnyType):
            raise SignatureInferenceError(f"incompatible array types {first} and {second}")
        return first if isinstance(first.items, ScalarType) else ArrayType(_merge(first.items, second.items))
    if isinstance(first, ObjectType) and isinstance(second, ObjectType):
        return _merge_objects(first, second)
    raise SignatureInferenceError(f"a list or array mixes types {first} and {second}")


def _optional(kind: DataType) -> DataType:
    """Objects merged with ``any``: every property becomes optional."""
    if isinstance(kind, ObjectType):
        return ObjectType(tuple(Property(p.name, p.type, False) for p in kind.properties))
    return kind


def _merge_objects(first: ObjectType, second: ObjectType) -> ObjectType:
    """Properties of both; one present in only one of them, or optional in either, is optional."""
    theirs = {p.name: p for p in second.properties}
    ours = {p.name: p for p in first.properties}
    merged = [
        Property(name, _merge(ours[name].type, theirs[name].type), ours[name].required and theirs[name].required)
        if name in ours and name in theirs
        else Property(name, (ours.get(name) or theirs[name]).type, False)
        for name in sorted(ours.keys() | theirs.keys())
    ]
    return ObjectType(tuple(merged))


_PYTHON_SCALAR_TYPES: dict[type, str] = {
    bool: "boolean", np.bool_: "boolean", int: "long", np.int64: "long", np.int32: "integer",
    float: "double", np.float64: "double", np.float32: "float", str: "string", np.str_: "string",
    bytes: "binary", np.bytes_: "binary", bytearray: "binary",
}


def _scalar_type(value: Any) -> ScalarType:
    name = _PYTHON_SCALAR_TYPES.get(type(value))
    if name:
        return ScalarType(name)
    if isinstance(value, (_dt.date, np.datetime64, pd.Timestamp)):
        return ScalarType("datetime")
    raise SignatureInferenceError(f"{value!r} ({type(value).__name__}) is not one of MLflow's data types")


def infer_param_schema(params: dict) -> ParamSchema:
    """Params as MLflow infers them: scalars, 1-D lists (shape ``[-1]``) and dicts; None is refused."""
    if not isinstance(params, dict):
        raise SignatureInferenceError(f"params must be a dict, got {type(params).__name__}")
    return ParamSchema(tuple(_infer_param(name, value) for name, value in params.items()))


def _infer_param(name: str, value: Any) -> ParamSpec:
    if isinstance(value, (list, np.ndarray)):
        if _depth(value) != 1:
            raise SignatureInferenceError(f"param {name!r}: expected a scalar or a 1-D list, got {_depth(value)}-D")
        if all(_is_datetime(v) for v in value):  # an empty list too, as in MLflow
            return ParamSpec(name, ScalarType("datetime"), [_json_scalar(v) for v in value], (-1,))
        return ParamSpec(name, _numpy_type(np.array(value).dtype), [_json_scalar(v) for v in value], (-1,))
    if _is_datetime(value):
        return ParamSpec(name, ScalarType("datetime"), _json_scalar(value), None)
    if np.isscalar(value):
        return ParamSpec(name, _numpy_type(np.array(value).dtype), _json_scalar(value), None)
    raise SignatureInferenceError(f"param {name!r}: expected a scalar or a 1-D list, got {type(value).__name__}")


def _depth(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.ndim
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _is_datetime(value: Any) -> bool:
    return isinstance(value, (_dt.date, np.datetime64, pd.Timestamp))


def _json_scalar(value: Any) -> Any:
    """A default as MLflow writes it: datetimes in ISO format, numpy scalars as Python values."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value
