"""The differences from `mlflow models serve` this server keeps on purpose, each pointing at its
entry in docs/protocol.md ("Where this server deliberately differs"). A difference matched by
none of them is a bug in one of the two servers' agreement, and fails the comparison."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .cases import Case

Outcome = tuple  # (status, error_code or predictions or the text of a non-JSON body)


@dataclass(frozen=True)
class Deliberate:
    """A deliberate difference: which cases (given both outcomes) it explains, and where it is documented."""

    doc: str
    matches: Callable[[Case, Outcome, Outcome], bool]


def _tag(case: Case, **wanted) -> bool:
    return all(case.tags.get(key) in (values if isinstance(values, tuple) else (values,))
               for key, values in wanted.items())


def _refused_where_mlflow_scores(case: Case, theirs: Outcome, ours: Outcome) -> bool:
    return theirs[0] == 200 and ours[0] == 400


DELIBERATE = [
    Deliberate("Error bodies are JSON (MLflow answers some errors in plain text)",
               lambda case, theirs, ours: theirs[0] == ours[0] and isinstance(theirs[1], str)
               and theirs[1].startswith("text:")),
    Deliberate("Unsafe conversions are refused: a fraction, an out-of-range or non-finite number for an integer "
               "column (MLflow truncates or wraps around)",
               lambda case, theirs, ours: _tag(case, column=("long", "integer")) and _refused_where_mlflow_scores(
                   case, theirs, ours)),
    Deliberate("Unsafe conversions are refused: a boolean column takes only true and false (MLflow makes any "
               "value a boolean by its truthiness)",
               lambda case, theirs, ours: _tag(case, column="boolean") and _refused_where_mlflow_scores(
                   case, theirs, ours)),
    Deliberate("Binary columns are base64-decoded in every format (MLflow: only for dataframe_*)",
               lambda case, theirs, ours: _tag(case, column="binary", format=("instances", "inputs", "csv"))),
    Deliberate("Unsafe conversions are refused: a fraction for an integer tensor (MLflow truncates it)",
               lambda case, theirs, ours: _tag(case, model="named_tensors", kind="fraction")
               and _refused_where_mlflow_scores(case, theirs, ours)),
    Deliberate("CSV bodies are read for tensor signatures (MLflow refuses every such body)",
               lambda case, theirs, ours: _tag(case, model=("tensor", "named_tensors"), format="csv")
               and theirs[0] == 400),
    Deliberate("Unsafe conversions are refused: a fraction or an infinity for a datetime column (MLflow's "
               "`dataframe_*` truncate it to whole nanoseconds or make it NaT)",
               lambda case, theirs, ours: _tag(case, column="datetime", kind=("fraction", "infinity",
                                                                             "minus_infinity"))
               and _refused_where_mlflow_scores(case, theirs, ours)),
    Deliberate("A null in a string column stays missing (MLflow's `instances`/`inputs` give the model the text "
               "'None')",
               lambda case, theirs, ours: _tag(case, column="string", kind="null", format=("instances", "inputs"))
               and theirs[0] == ours[0] == 200),
    Deliberate("CSV datetime columns are parsed (MLflow cannot read a CSV body for a datetime signature)",
               lambda case, theirs, ours: _tag(case, column="datetime", format="csv") and theirs[0] == 400),
    Deliberate("A null in a binary column stays missing, as in every other column type (MLflow's `dataframe_*` "
               "refuse it)",
               lambda case, theirs, ours: _tag(case, column="binary", kind="null") and theirs[0] == 400
               and ours[0] == 200),
    Deliberate("Base64 is decoded strictly: text with characters outside the standard alphabet is refused "
               "(MLflow's `dataframe_*` drop those characters and decode the rest)",
               lambda case, theirs, ours: _tag(case, column="binary", kind=("base64_urlsafe", "date", "datetime_tz"))
               and _refused_where_mlflow_scores(case, theirs, ours)),
    Deliberate("A number for a datetime column is nanoseconds since the epoch in every format, a whole float "
               "and NaN (missing) included (MLflow's `instances`/`inputs` refuse any float)",
               lambda case, theirs, ours: _tag(case, column="datetime", kind=("exponent", "nan"),
                                               format=("instances", "inputs"))
               and theirs[0] == 400 and ours[0] == 200),
    Deliberate("Unsafe conversions are refused: a boolean, a number written as text or a timezone-aware text for "
               "a datetime column (MLflow's `instances`/`inputs` read true as 1 ns, \"5\" as a day in 1758, and "
               "convert an offset to UTC)",
               lambda case, theirs, ours: _tag(case, column="datetime", kind=("true", "false", "numeric_text",
                                                                             "datetime_tz"),
                                               format=("instances", "inputs"))
               and _refused_where_mlflow_scores(case, theirs, ours)),
    Deliberate("Integers beyond 64 bits in a JSON body are read as the nearest double, as RFC 8259 allows "
               "(MLflow keeps every digit; a string column then sees the double's text)",
               lambda case, theirs, ours: _tag(case, column="string", kind="beyond_int64")
               and theirs[0] == ours[0] == 200),
]


def explanation(case: Case, theirs: Outcome, ours: Outcome) -> str | None:
    """The docs/protocol.md entry that explains this difference, or None."""
    return next((rule.doc for rule in DELIBERATE if rule.matches(case, theirs, ours)), None)
