"""Hostile input to every dashboard page and form gets a page or a 4xx, never a 5xx (the API's promise, kept by the UI)."""

from __future__ import annotations

import re
import uuid

from litestar.testing import TestClient

PAGES = ["/ui", "/ui/endpoints", "/ui/endpoints/new", "/ui/events", "/ui/deliveries", "/ui/dead-letter", "/ui/alerts",
         "/ui/api-keys", "/ui/operations/op_x", "/ui/endpoints/ep_x", "/ui/events/evt_x", "/ui/deliveries/dlv_x"]
FORMS = ["/ui/endpoints/new", "/ui/api-keys", "/ui/dead-letter/replay", "/ui/endpoints/ep_x/edit",
         "/ui/endpoints/ep_x/pause", "/ui/endpoints/ep_x/delete", "/ui/endpoints/ep_x/analysis",
         "/ui/endpoints/ep_x/secret", "/ui/events/evt_x/replay", "/ui/deliveries/dlv_x/replay",
         "/ui/dead-letter/dlv_x/discard", "/ui/api-keys/key_x/revoke", "/ui/login", "/ui/signup"]
PARAMS = ["state", "endpoint_id", "event_type", "since", "until", "cursor", "limit", "type", "q", "status", "next"]
FIELDS = ["url", "event_types", "description", "timeout_seconds", "rate_limit", "fifo", "max_in_flight", "name",
          "endpoint_id", "event_type", "since", "until", "back", "email", "password", "tenant_name"]
VALUES = ["", "<script>alert(1)</script>", "'; DROP TABLE relay.events; --", "\x00", "9" * 400, "2024-13-45T99:99",
          "-1", "%00", "\u202e\u200b"]


def test_no_dashboard_page_or_form_answers_5xx(api: TestClient) -> None:
    api.cookies.clear()
    form = api.get("/ui/signup").text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    signed_up = api.post("/ui/signup", data={"_csrf_token": token, "email": f"h-{uuid.uuid4().hex[:8]}@example.com",
                                             "password": "p" * 12, "password_again": "p" * 12, "tenant_name": "H"},
                         follow_redirects=False)
    assert signed_up.status_code == 303
    failures = []
    for path in PAGES:
        for name in PARAMS:
            for value in VALUES:
                answer = api.get(path, params={name: value}, follow_redirects=False)
                if answer.status_code >= 500:
                    failures.append(("GET", path, name, value, answer.status_code))
    for path in FORMS:
        for name in FIELDS:
            for value in VALUES:
                answer = api.post(path, data={"_csrf_token": token, name: value, "url": "http://127.0.0.1:9/x"},
                                  headers={"x-csrftoken": token}, follow_redirects=False)
                if answer.status_code >= 500:
                    failures.append(("POST", path, name, value, answer.status_code))
        for body, kind in ((b'{"a": 1}', "application/json"), (b"\xff\xfe", "application/x-www-form-urlencoded"),
                           (b"a=%ZZ&b", "application/x-www-form-urlencoded")):
            answer = api.post(path, content=body, headers={"x-csrftoken": token, "content-type": kind},
                              follow_redirects=False)
            if answer.status_code >= 500:
                failures.append(("POST", path, kind, body, answer.status_code))
    api.cookies.clear()
    assert failures == []
