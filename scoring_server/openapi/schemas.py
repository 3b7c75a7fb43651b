"""JSON Schemas (2020-12, as OpenAPI 3.1 uses) of what ``/invocations`` accepts, derived from a
model's signature: one request schema per body format, and the error body."""
from __future__ import annotations

from typing import Any

from flavors.signature import (
    AnyType, ArrayType, ColSpec, DataType, MapType, ModelSignature, ObjectType, ParamSchema, ScalarType, Schema,
    TensorSpec,
)

from ..decoding.json_formats import DATAFRAME_RECORDS, DATAFRAME_SPLIT, INPUTS, INSTANCES, PARAMS_KEY

JSONSchema = dict[str, Any]

_INT32, _INT64, _DOUBLE = 2**31, 2**63, 1.7976931348623157e308
_SCALARS: dict[str, JSONSchema] = {
    "double": {"type": "number", "minimum": -_DOUBLE, "maximum": _DOUBLE},
    "float": {"type": "number", "minimum": -3.4e38, "maximum": 3.4e38},
    "long": {"type": "integer", "minimum": -_INT64, "maximum": _INT64 - 1},
    "integer": {"type": "integer", "minimum": -_INT32, "maximum": _INT32 - 1},
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
}
_DTYPE_KINDS: dict[str, JSONSchema] = {
    "f": _SCALARS["double"], "i": _SCALARS["long"], "u": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    "b": _SCALARS["boolean"], "U": _SCALARS["string"], "S": _SCALARS["binary"], "O": {},
}

ERROR: JSONSchema = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "examples": ["BAD_REQUEST", "INVALID_PARAMETER_VALUE"]},
        "message": {"type": "string"},
        "stack_trace": {"type": "string", "description": "Only when the server exposes stack traces."},
        "request_id": {"type": "string", "description": "The request's X-Request-ID: quote it to find its log lines."},
    },
}


def value_schema(data_type: DataType) -> JSONSchema:
    """The JSON values a signature type accepts."""
    if isinstance(data_type, ScalarType):
        return dict(_SCALARS.get(data_type.name, {}))
    if isinstance(data_type, ArrayType):
        return {"type": "array", "items": value_schema(data_type.items)}
    if isinstance(data_type, ObjectType):
        return {"type": "object", "properties": {p.name: value_schema(p.type) for p in data_type.properties},
                "required": [p.name for p in data_type.properties if p.required]}
    if isinstance(data_type, MapType):
        return {"type": "object", "additionalProperties": value_schema(data_type.values)}
    assert isinstance(data_type, AnyType), data_type
    return {}


def request_schemas(signature: ModelSignature | None) -> dict[str, JSONSchema]:
    """The JSON body of each format, by format key, for a model with this signature."""
    inputs = signature.inputs if signature else None
    params = _params_schema(signature.params if signature else None)
    if inputs is None or not inputs.specs:
        formats = _untyped_formats()
    elif inputs.is_tensor_spec:
        formats = _tensor_formats(inputs)
    else:
        formats = _column_formats(inputs)
    return {key: _payload(key, body, params) for key, body in formats.items()}


def _payload(key: str, body: JSONSchema, params: JSONSchema) -> JSONSchema:
    return {"type": "object", "required": [key], "properties": {key: body, PARAMS_KEY: params},
            "additionalProperties": False}


def _column_formats(inputs: Schema) -> dict[str, JSONSchema]:
    columns = [spec for spec in inputs.specs if isinstance(spec, ColSpec)]
    if not inputs.has_input_names:
        row = {"type": "array", "prefixItems": [value_schema(c.type) for c in columns],
               "minItems": len(columns), "maxItems": len(columns)}
        return {DATAFRAME_SPLIT: {"type": "object", "required": ["data"],
                                  "properties": {"data": {"type": "array", "minItems": 1, "items": row}}},
                INPUTS: {"type": "array", "minItems": 1, "items": row}}
    names = [c.name for c in columns]
    record = {"type": "object", "properties": {c.name: value_schema(c.type) for c in columns},
              "required": [c.name for c in columns if c.required]}
    row = {"type": "array", "prefixItems": [value_schema(c.type) for c in columns],
           "minItems": len(columns), "maxItems": len(columns)}
    by_column = {"type": "object", "properties": {c.name: {"type": "array", "items": value_schema(c.type)}
                                                  for c in columns},
                 "required": [c.name for c in columns if c.required]}
    return {
        DATAFRAME_SPLIT: {"type": "object", "required": ["columns", "data"],
                          "properties": {"columns": {"const": names}, "index": {"type": "array"},
                                         "data": {"type": "array", "minItems": 1, "items": row}}},
        DATAFRAME_RECORDS: {"type": "array", "minItems": 1, "items": record},
        INSTANCES: {"type": "array", "minItems": 1, "items": record},
        INPUTS: by_column,
    }


def _tensor_formats(inputs: Schema) -> dict[str, JSONSchema]:
    tensors = [spec for spec in inputs.specs if isinstance(spec, TensorSpec)]
    if len(tensors) == 1 and tensors[0].name is None:
        body = _tensor_schema(tensors[0])
    else:
        body = {"type": "object", "properties": {t.name: _tensor_schema(t) for t in tensors},
                "required": [t.name for t in tensors]}
    return {INSTANCES: body, INPUTS: body}


def _tensor_schema(spec: TensorSpec) -> JSONSchema:
    """Nested arrays of the spec's shape (``-1``: any length) holding its dtype's values."""
    schema = dict(_DTYPE_KINDS.get(spec.dtype.kind, {}))
    for size in reversed(spec.shape):
        schema = {"type": "array", "items": schema, **({} if size == -1 else {"minItems": size, "maxItems": size})}
    return schema


def _untyped_formats() -> dict[str, JSONSchema]:
    """Without an input schema the server takes any table the model itself accepts."""
    row = {"type": "array", "items": {}}
    return {
        DATAFRAME_SPLIT: {"type": "object", "required": ["data"],
                          "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                                         "index": {"type": "array"}, "data": {"type": "array", "items": row}}},
        DATAFRAME_RECORDS: {"type": "array", "items": {"type": "object"}},
        INSTANCES: {},
        INPUTS: {},
    }


def _params_schema(params: ParamSchema | None) -> JSONSchema:
    if params is None:
        return {"type": "object", "description": "This model declares no params; any sent are ignored."}
    properties = {}
    for spec in params.params:
        value = value_schema(spec.type)
        properties[spec.name] = {"type": "array", "items": value} if spec.shape else value
        if spec.default is not None:
            properties[spec.name]["default"] = spec.default
    return {"type": "object", "properties": properties}
