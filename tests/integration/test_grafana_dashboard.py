"""The Grafana dashboard (deploy/grafana/dashboards/relay.json) queries only what the real /metrics exports.

Every PromQL expression of every panel is parsed (promql-parser, a real PromQL parser): it must
parse, its metric names must be series the
app's `/metrics` answers (histogram `_bucket`/`_sum`/`_count` included), its label matchers
and `by (…)` labels must be labels those series carry, and an `=` matcher's value must be
one they take. A renamed metric or label then fails here, not as an empty panel in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from promql_parser import AggregateExpr, BinaryExpr, MatchOp, VectorSelector, parse, walk

from tests.support import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "relay.json"

# Grafana's own variables, given a value so that the expression parses as Prometheus would receive it.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
_OPERATORS = {int(MatchOp.Equal): "=", int(MatchOp.NotEqual): "!=", int(MatchOp.Re): "=~", int(MatchOp.NotRe): "!~"}
# Series a histogram or counter family is made of, for a family that has no sample yet.
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "summary": ("_sum", "_count")}


@dataclass
class Query:
    """What one PromQL expression asks for: metric names, label matchers and grouping labels."""

    metrics: set[str] = field(default_factory=set)
    matchers: list[tuple[str, str, str, str]] = field(default_factory=list)  # (metric, label, operator, value)
    grouping: set[str] = field(default_factory=set)


def parse_promql(expr: str) -> Query:
    """Take a PromQL expression apart with a real PromQL parser (ValueError when it does not parse)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    query = Query()

    def visit(node: object) -> None:
        if isinstance(node, VectorSelector):
            matchers = [(m.name, _OPERATORS[int(m.op)], m.value) for m in node.matchers.matchers]
            name = node.name or next(value for label, op, value in matchers if label == "__name__" and op == "=")
            query.metrics.add(name)
            query.matchers += [(name, label, op, value) for label, op, value in matchers if label != "__name__"]
        elif isinstance(node, AggregateExpr) and node.modifier is not None:
            query.grouping.update(node.modifier.labels)  # by (…) / without (…)
        elif isinstance(node, BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                query.grouping.update(node.modifier.matching.labels)  # on (…) / ignoring (…)
            query.grouping.update(node.modifier.group_labels or [])  # group_left (…) / group_right (…)

    walk(parse(expr), visit)
    return query


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel's targets."""
    return [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel.get("targets", [])]


@dataclass
class Exposition:
    """The series /metrics answers: their names and, per name, each label's values."""

    labels: dict[str, dict[str, set[str]]]
    families: dict[str, str]  # name (as prometheus-client's parser gives it: no _total) -> type


def scrape(api: TestClient) -> Exposition:
    """Read /metrics with prometheus-client's own parser."""
    text = api.get("/metrics").text
    labels: dict[str, dict[str, set[str]]] = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for suffix in _SUFFIXES.get(family.type, ("",)):
            labels.setdefault(family.name + suffix, {})
        for sample in family.samples:
            series = labels.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                series.setdefault(label, set()).add(value)
    return Exposition(labels, families)


@pytest.fixture
def exposition(api: TestClient, auth: dict[str, str]) -> Exposition:
    """/metrics of the real app once every family has a sample: an endpoint exists and requests were served."""
    assert api.post("/v1/endpoints", json={"url": "https://example.com/grafana"}, headers=auth).status_code == 201
    assert api.get("/health").status_code == 200
    return scrape(api)


def problems(dashboard: dict[str, Any], exported: Exposition) -> list[str]:
    """What the dashboard queries that /metrics does not export, one line each."""
    found = []
    for title, expr in expressions(dashboard):
        try:
            query = parse_promql(expr)
        except ValueError as error:
            found.append(f"{title!r}: {expr!r} is not PromQL: {error}")
            continue
        if not query.metrics:
            found.append(f"{title!r}: no metric in {expr!r}")
        for metric in sorted(query.metrics - set(exported.labels)):
            found.append(f"{title!r}: {metric} is not exported by /metrics ({expr!r})")
        known = [exported.labels[m] for m in query.metrics if m in exported.labels]
        for label in sorted(query.grouping - {"le"} - {name for series in known for name in series}):
            found.append(f"{title!r}: no queried series has the label {label!r} ({expr!r})")
        for metric, label, operator, value in query.matchers:
            values = exported.labels.get(metric, {}).get(label)
            if metric in exported.labels and values is None:
                found.append(f"{title!r}: {metric} has no label {label!r}")
            elif values is not None and operator == "=" and value not in values:
                found.append(f"{title!r}: {metric}{{{label}={value!r}}} matches nothing: it takes {sorted(values)}")
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping", "matchers"),
    [
        ("max(relay_queue_depth)", {"relay_queue_depth"}, set(), []),
        ('histogram_quantile(0.95, sum by (le, path) (rate(a_seconds_bucket{x=~"5.."}[$__rate_interval])))',
         {"a_seconds_bucket"}, {"le", "path"}, [("a_seconds_bucket", "x", "=~", "5..")]),
        ('sum(rate(a_total{status="dead"}[5m] offset 1h)) / on (job) group_left (i) b * 1e3 > bool 0.5',
         {"a_total", "b"}, {"job", "i"}, [("a_total", "status", "=", "dead")]),
        ('{__name__="c", d!="e"} or topk(10, f) unless sum without (h) (g)',
         {"c", "f", "g"}, {"h"}, [("c", "d", "!=", "e")]),
    ],
)
def test_promql_is_taken_apart_into_metrics_and_labels(
    expr: str, metrics: set[str], grouping: set[str], matchers: list[tuple[str, str, str, str]]
) -> None:
    query = parse_promql(expr)
    assert (query.metrics, query.grouping, query.matchers) == (metrics, grouping, matchers)


def test_every_panel_uses_the_prometheus_datasource_variable(dashboard: dict[str, Any]) -> None:
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    queried = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert len(queried) >= 15
    for panel in queried:
        assert panel["targets"], f"{panel['title']!r} has no query"
        for source in [panel["datasource"], *(target["datasource"] for target in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_every_metric_the_dashboard_queries_is_exported(dashboard: dict[str, Any], exposition: Exposition) -> None:
    found = problems(dashboard, exposition)
    assert not found, "\n".join(found)


def test_every_relay_metric_has_a_panel(dashboard: dict[str, Any], exposition: Exposition) -> None:
    queried = {metric for _, expr in expressions(dashboard) for metric in parse_promql(expr).metrics}
    missing = sorted(
        name for name, kind in exposition.families.items()
        if name.startswith("relay_") and not name.endswith("_created")  # _created: prometheus-client's timestamps
        and not queried & {name + suffix for suffix in _SUFFIXES.get(kind, ("",))}
    )
    assert not missing, f"/metrics exports these and no panel of {DASHBOARD.name} shows them: {missing}"


def test_a_panel_querying_a_metric_that_does_not_exist_is_caught(
    dashboard: dict[str, Any], exposition: Exposition
) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][1]["targets"][0]["expr"] = "max(relay_queue_depht)"
    broken["panels"][2]["targets"][0]["expr"] = 'sum by (outcome) (rate(relay_deliveries_total{status="ok"}[5m]))'
    broken["panels"][3]["targets"][0]["expr"] = "max(rate(relay_queue_depth[5m])"
    found = problems(broken, exposition)
    assert len(found) == 4, found
    assert "relay_queue_depht is not exported" in found[0]
    assert "label 'outcome'" in found[1] and "status='ok'" in found[2]
    assert "is not PromQL" in found[3]
