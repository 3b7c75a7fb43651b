"""Decoding of the JSON request formats."""
import numpy as np
import pandas as pd
import pytest

from flavors.signature import ModelSignature
from scoring_server.decoding import ModelInputs, RequestBody, decode_table
from scoring_server.decoding.json_body import check_before_parsing, check_json_depth, parse_json
from scoring_server.decoding.json_formats import check_input_size, decode_json_payload
from scoring_server.decoding.limits import DecodeLimits, brackets, json_depth_exceeds, row_width, scalars
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


@pytest.mark.parametrize("rows, error_code", [
    ([[1, 2]], "INVALID_PARAMETER_VALUE"),  # numbers: MLflow converts them, then misses the columns by name
    ([[1.5, "s"]], "BAD_REQUEST"),  # mixed: MLflow's conversion itself fails
    ([[1, 2], [3]], "BAD_REQUEST"),  # ragged
])
def test_instances_list_of_rows_is_refused_for_a_column_signature(rows, error_code):
    with pytest.raises(ScoringError) as raised:
        decode_json_payload({"instances": rows}, COLUMN_SIG)
    assert raised.value.error_code == error_code  # as MLflow 3.17 (scripts/compare_with_mlflow.py)


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


# --- what a payload may decode into (scoring_server/decoding/limits.py) ------------------------

LIMITS = DecodeLimits(max_rows=3, max_cells=6, max_json_depth=4, max_decoded_bytes=400)


@pytest.mark.parametrize("rows, width", [
    ([[1, 2], [1, 2, 3]], 3),
    ([{"a": 1}, {"b": 1}, {"a": 2, "c": 3}], 3),
    ([[1], {"a": 1, "b": 2}], 2),
    ([1, 2], 1),
    (["a long string"], 1),
    ([], 0),
])
def test_row_width_is_the_columns_pandas_spreads_rows_over(rows, width):
    assert row_width(rows) == width


@pytest.mark.parametrize("value, count, longest", [
    ([1.0, 2.0], 2, 0),
    ([[1, 2], [3, [4, 5]]], 5, 0),
    ([["ab", "c"], [{"k": "xyz"}]], 3, 3),
    ([[], []], 0, 0),
])
def test_scalars_are_counted_at_every_depth(value, count, longest):
    assert scalars(value) == (count, longest)


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]] * 4}},
    {"dataframe_split": {"columns": ["a", "b", "c", "d", "e", "f", "g"], "data": []}},
    {"dataframe_split": {"data": [[1], [1, 2, 3, 4]]}},
    {"dataframe_records": [{"a": 1}, {"b": 1}, {"c": 1}]},
    {"instances": [[1, 2, 3], [4, 5, 6], [7]]},
    {"inputs": {"a": [1, 2, 3, 4]}},
    {"inputs": [["x" * 100, ""]]},
], ids=["rows", "columns_alone", "ragged_rows", "record_keys", "tensor_scalars", "tensor_columns", "string_width"])
def test_payloads_over_the_limits_are_refused_before_decoding(payload):
    with pytest.raises(ScoringError) as raised:
        check_input_size(payload, LIMITS)
    assert raised.value.status == 400 and "server limit `max_" in raised.value.message


@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]] * 3}},
    {"dataframe_records": [{"a": 1, "b": 2}] * 3},
    {"instances": [[1, 2], [3, 4], [5, 6]]},
    {"inputs": {"a": [1, 2, 3], "b": [4, 5, 6]}},
    {"messages": [[1] * 100]},
    {"dataframe_split": "not an object"},
], ids=["split", "records", "instances", "inputs", "llm_payload", "malformed_left_to_decoding"])
def test_payloads_within_the_limits_pass(payload):
    check_input_size(payload, LIMITS)


def test_a_string_tensor_for_a_column_signature_is_not_fixed_width():
    check_input_size({"inputs": {"a": ["x" * 1000]}}, DecodeLimits(max_decoded_bytes=400), COLUMN_SIG.inputs)
    with pytest.raises(ScoringError):
        check_input_size({"inputs": {"a": ["x" * 1000]}}, DecodeLimits(max_decoded_bytes=400), TENSOR_SIG.inputs)


@pytest.mark.parametrize("text, too_deep", [
    ('[[[1]]]', False),
    ('[[[[1]]]]', False),
    ('[[[[[1]]]]]', True),
    ('{"a": [{"b": [1]}]}', False),
    ('{"a": [{"b": [[1]]}]}', True),
    ('[[1], [2], [3], [4], [5], [[[[6]]]]]', True),
    ('["[[[[[[[[[[", "{{{{{{{{"]', False),
    ('[[], {}, [[]], [{"a": []}]]', False),
])
def test_json_depth_counts_nesting_not_brackets(text, too_deep):
    body = text.encode()
    assert json_depth_exceeds(parse_json(body), 4, brackets(body)) is too_deep
    assert json_depth_exceeds(parse_json(body), 4) is too_deep  # without the count: always walked


def test_json_deeper_than_the_limit_is_a_400_naming_it():
    body = b'{"inputs": [[[[[1]]]]]}'
    with pytest.raises(ScoringError, match="more than 4 levels deep .*max_json_depth"):
        check_json_depth(parse_json(body), 4, brackets(body))
    with pytest.raises(ScoringError, match="max_json_depth"):
        RequestBody(body, "application/json", LIMITS).json()


def test_a_body_of_more_lists_than_rows_and_cells_allow_is_refused_before_parsing(monkeypatch):
    """``[],`` is 3 bytes of body and about 80 of parsed list: such bodies are refused unparsed."""
    import scoring_server.decoding.request as request_module

    allowed = LIMITS.max_rows + LIMITS.max_cells + 64
    at_most = ("[" + "[]," * (allowed - 2) + "[]]").encode()
    assert check_before_parsing(at_most, LIMITS) == allowed
    over = ("[" + "[]," * (allowed - 1) + "[]]").encode()
    monkeypatch.setattr(request_module, "parse_json", lambda raw: pytest.fail("parsed"))
    with pytest.raises(ScoringError, match=f"holds {allowed + 1} lists and objects.*max_cells"):
        RequestBody(over, "application/json", LIMITS).json()
