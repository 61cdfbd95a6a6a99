"""Embedded metric format records, as CloudWatch reads them from the log stream."""

import json

import pytest

from gateway import observability
from gateway.observability import COUNT, MILLISECONDS, Figures


@pytest.fixture(autouse=True)
def _service(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "inference-gateway")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Gateway")


def written(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_record_names_its_figures_units_and_dimensions(capsys):
    figures = Figures(("Invocations", COUNT), ("ModelLatency", MILLISECONDS))

    figures.emit(1, 12.5, endpoint="echo")

    (record,) = written(capsys)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "Gateway",
        "Dimensions": [["service", "endpoint"]],
        "Metrics": [
            {"Name": "Invocations", "Unit": "Count"},
            {"Name": "ModelLatency", "Unit": "Milliseconds"},
        ],
    }
    assert isinstance(record["_aws"]["Timestamp"], int)
    assert record["service"] == "inference-gateway"
    assert record["endpoint"] == "echo"
    assert record["Invocations"] == [1.0]
    assert record["ModelLatency"] == [12.5]


def test_a_record_without_an_endpoint_has_only_the_service(capsys):
    Figures(("Throttles", COUNT)).emit(1)

    (record,) = written(capsys)
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "endpoint" not in record


@pytest.mark.parametrize("endpoint", ['100%-"odd"\\name', "%d%r%s", "{a!r}{}", "plain"])
def test_any_endpoint_name_is_written_as_json_text(capsys, endpoint):
    Figures(("Invocations", COUNT)).emit(1, endpoint=endpoint)

    (record,) = written(capsys)
    assert record["endpoint"] == endpoint
    assert record["Invocations"] == [1.0]


def test_records_stay_right_past_the_lines_kept(capsys):
    figures = Figures(("Invocations", COUNT))
    names = [f"endpoint-{index}" for index in range(observability._MAX_LINES + 5)]

    for name in names + names[:3]:
        figures.emit(1, endpoint=name)

    assert [record["endpoint"] for record in written(capsys)] == names + names[:3]


def test_a_failed_write_never_fails_the_caller(monkeypatch):
    figures = Figures(("Invocations", COUNT))
    monkeypatch.setattr(observability.sys, "stdout", None)

    figures.emit(1, endpoint="echo")


def test_a_record_holds_one_or_two_figures():
    with pytest.raises(ValueError, match="one or two"):
        Figures()
    with pytest.raises(ValueError, match="one or two"):
        Figures(("A", COUNT), ("B", COUNT), ("C", COUNT))
