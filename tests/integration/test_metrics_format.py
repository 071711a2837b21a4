"""/metrics speaks Prometheus' text format exactly: content type, HEAD, and a strict parser."""

from __future__ import annotations

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS_TEXT = "text/plain; version=1.0.0; charset=utf-8"


def test_metrics_answer_with_exactly_the_prometheus_content_type(api: TestClient) -> None:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == PROMETHEUS_TEXT  # once, no doubled charset


def test_metrics_answer_head_like_get_without_a_body(api: TestClient) -> None:
    response = api.head("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == PROMETHEUS_TEXT
    assert response.content == b""


def test_every_line_parses_with_prometheus_clients_parser(api: TestClient) -> None:
    families = {family.name: family for family in text_string_to_metric_families(api.get("/metrics").text)}
    for name in ("relay_events_ingested", "relay_deliveries", "relay_delivery_duration_seconds",
                 "relay_queue_depth", "relay_queue_lag_seconds", "relay_circuit_open", "relay_attempts_lost",
                 "relay_endpoint_concurrency", "relay_endpoint_in_flight"):
        assert name in families, sorted(families)
