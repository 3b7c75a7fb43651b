"""Content-Type negotiation rules (MLflow's, plus application/csv)."""
import pytest

from scoring_server import content_types
from scoring_server.errors import ScoringError


@pytest.mark.parametrize(
    "header, expected",
    [
        ("application/json", content_types.JSON),
        ("application/json; charset=utf-8", content_types.JSON),
        ("application/json;charset=UTF-8", content_types.JSON),
        ("text/csv", content_types.CSV),
        ("application/csv", content_types.CSV),
        ("text/csv; charset=utf-8", content_types.CSV),
        ("application/vnd.apache.parquet", content_types.PARQUET),
    ],
)
def test_supported_types_are_negotiated(header, expected):
    assert content_types.negotiate(header).media_type == expected


@pytest.mark.parametrize(
    "header", ["text/plain", "APPLICATION/JSON", "", None, "application/json;", 'application/json; charset="utf-8"',
               "application/json; charset=latin-1", "application/json; format=pandas-records"],
)
def test_everything_else_is_415(header):
    with pytest.raises(ScoringError) as raised:
        content_types.negotiate(header)
    assert raised.value.status == 415


def test_several_unknown_parameters_are_all_named():
    with pytest.raises(ScoringError, match="Unrecognized content type parameters: format, orient"):
        content_types.negotiate("application/json; orient=split; format=pandas-split")
