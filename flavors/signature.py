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
        out: dict[str, Any] = {"type": "tensor", "tensor-spec": {"dtype": str(self.dtype), "shape": list(self.shape)}}
        if self.name is not None:
            out["name"] = self.name
        return out


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

def infer_signature(model_input: Any, model_output: Any = None, params: dict | None = None) -> ModelSignature:
    """Infer a signature from example input, output and params, as MLflow's ``infer_signature`` does."""
    return ModelSignature(
        inputs=infer_schema(model_input),
        outputs=infer_schema(model_output) if model_output is not None else None,
        params=_infer_param_schema(params) if params else None,
    )


def infer_schema(data: Any) -> Schema:
    """A column schema for DataFrames and dicts of columns, a tensor schema for arrays."""
    if isinstance(data, pd.Series):
        return Schema((ColSpec(_infer_column_type(data), None if data.name is None else str(data.name)),))
    if isinstance(data, pd.DataFrame):
        return Schema(tuple(ColSpec(_infer_column_type(data[c]), str(c)) for c in data.columns))
    if isinstance(data, dict) and not all(isinstance(v, np.ndarray) for v in data.values()):
        frame = pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in data.items()})
        return infer_schema(frame)
    if isinstance(data, dict):
        return Schema(tuple(TensorSpec(v.dtype, (-1, *v.shape[1:]), k) for k, v in data.items()))
    array = np.asarray(data)
    if array.dtype.kind in "OU":
        return Schema((ColSpec(_infer_column_type(pd.Series(array.ravel())), None),))
    return Schema((TensorSpec(array.dtype, (-1, *array.shape[1:])),))


_KIND_TO_TYPE = {"b": "boolean", "f": "double", "M": "datetime", "S": "binary"}


def _infer_column_type(column: pd.Series) -> DataType:
    dtype = column.dtype
    if dtype.kind == "i" or dtype.kind == "u":
        return ScalarType("integer" if dtype.itemsize <= 4 else "long")
    if dtype.kind == "f":
        return ScalarType("float" if dtype.itemsize <= 4 else "double")
    if dtype.kind in _KIND_TO_TYPE:
        return ScalarType(_KIND_TO_TYPE[dtype.kind])
    values = column.dropna()
    if len(values) and all(isinstance(v, (bytes, bytearray)) for v in values):
        return ScalarType("binary")
    return ScalarType("string")


def _infer_param_schema(params: dict) -> ParamSchema:
    return ParamSchema(tuple(_infer_param(name, value) for name, value in params.items()))


def _infer_param(name: str, value: Any) -> ParamSpec:
    if isinstance(value, (list, np.ndarray)):
        items = list(value)
        return ParamSpec(name, _scalar_type_of(items[0] if items else ""), items, (-1,))
    return ParamSpec(name, _scalar_type_of(value), value, None)


def _scalar_type_of(value: Any) -> ScalarType:
    if isinstance(value, bool):
        return ScalarType("boolean")
    if isinstance(value, (int, np.integer)):
        return ScalarType("long")
    if isinstance(value, (float, np.floating)):
        return ScalarType("double")
    if isinstance(value, (bytes, bytearray)):
        return ScalarType("binary")
    if isinstance(value, (_dt.date, np.datetime64)):
        return ScalarType("datetime")
    return ScalarType("string")

