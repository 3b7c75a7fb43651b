"""Decoding of the JSON request formats."""
import numpy as np
import pandas as pd
import pytest

from flavors.signature import ModelSignature
from scoring_server.decoding import ModelInputs, decode_table
from scoring_server.decoding.json_body import parse_json
from scoring_server.decoding.json_formats import decode_json_payload
from scoring_server.errors import ScoringError

COLUMN_SIG = ModelSignature.from_mlmodel({
    "inputs": '[{"type": "double", "name": "a"}, {"type": "double", "name": "b"}]',
    "params": '[{"name": "temperature", "type": "double", "default": 0.5, "shape": null}]',
})
TENSOR_SIG = ModelSignature.from_mlmodel({"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]'})


def test_dataframe_split_with_index():
    request = decode_json_payload({"dataframe_split": {"columns": ["a"], "data": [[1], [2]], "index": [7, 8]}}, None)
    assert list(request.data.index) == [7, 8]
    assert request.params is None and request.format == "dataframe_split"


def test_dataframe_records_keep_params():
    request = decode_json_payload({"dataframe_records": [{"a": 1}], "params": {"k": 1}}, None)
    pd.testing.assert_frame_equal(request.data, pd.DataFrame({"a": [1]}))
    assert request.params == {"k": 1}


def test_instances_of_dicts_become_columns_for_a_column_signature():
    request = decode_json_payload({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}, COLUMN_SIG)
    pd.testing.assert_frame_equal(request.data, pd.DataFrame({"a": [1, 3], "b": [2, 4]}))


def test_inputs_scalars_become_one_row():
    request = decode_json_payload({"inputs": {"a": 1.0, "b": 2.0}}, COLUMN_SIG)
    assert request.data.shape == (1, 2)


def test_inputs_nested_lists_become_arrays_without_signature():
    request = decode_json_payload({"inputs": [[1, 2], [3, 4]]}, None)
    assert isinstance(request.data, np.ndarray) and request.data.shape == (2, 2)


def test_named_tensors_stay_a_dict_of_arrays():
    request = decode_json_payload({"inputs": {"x": [[1, 2]], "y": [3]}}, TENSOR_SIG)
    assert set(request.data) == {"x", "y"} and request.data["x"].shape == (1, 2)


def test_instances_list_of_rows_is_refused_for_a_column_signature():
    with pytest.raises(ScoringError) as raised:
        decode_json_payload({"instances": [[1, 2]]}, COLUMN_SIG)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"


def test_ragged_instances_are_bad_request():
    with pytest.raises(ScoringError, match="TF serving"):
        decode_json_payload({"instances": [[1, 2], [3]]}, None)


def test_llm_payload_is_split_by_the_param_schema_and_unwrapped():
    request = decode_json_payload({"messages": [{"role": "user"}], "temperature": 0.1, "max_tokens": 5}, COLUMN_SIG)
    assert request.format == "llm"
    assert request.data == {"messages": [{"role": "user"}], "max_tokens": 5}
    assert request.params == {"temperature": 0.1}


def test_llm_key_wins_over_format_keys():
    request = decode_json_payload({"prompt": "hi", "dataframe_split": {"data": []}}, None)
    assert request.format == "llm" and "dataframe_split" in request.data


def test_utf16_and_bom_bodies_parse():
    assert parse_json('{"a": 1}'.encode("utf-16")) == {"a": 1}
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_csv_reads_text_columns_as_text():
    sig = ModelSignature.from_mlmodel({"inputs": '[{"type": "string", "name": "code"}, {"type": "long", "name": "n"}]'})
    frame = decode_table(b"code,n\n007,1\n", "text/csv", ModelInputs(sig)).data
    assert frame["code"].tolist() == ["007"] and frame["n"].tolist() == [1]
