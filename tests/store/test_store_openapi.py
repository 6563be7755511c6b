"""The API is checked against its own OpenAPI document (/openapi.json): schemathesis generates
requests from the document, valid and invalid, and checks every answer against it — status codes,
content types and response schemas — and that nothing ends in a 500. On each backend."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from store_helpers import get_json


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_the_api_keeps_to_its_openapi_document(api, mode):
    schema = schemathesis.openapi.from_url(api.url + "openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (operation.query or operation.path_parameters):
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            # Rules across parameters (from before to, at most 10,000 buckets) cannot be
            # written in OpenAPI 3; the API answers them with a documented 400 and a message,
            # which positive_data_acceptance would count as refusing valid data. Every other
            # check stays on: no 500, status codes, content types and bodies as documented.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


def test_the_document_describes_every_endpoint(api):
    document = get_json(api.url + "openapi.json")
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {
        "/api/v1/devices",
        "/api/v1/devices/{device}",
        "/api/v1/latest",
        "/api/v1/devices/{device}/series",
        "/api/v1/events",
        "/api/v1/images/{device}/{event_id}",
        "/api/v1/export.csv",
        "/api/v1/export.geojson",
        "/api/v1/sites",
        "/api/v1/sites.geojson",
        "/ngsi/v2/entities",
        "/ngsi/v2/entities/{entity_id}",
    } <= paths
    assert not any(p.startswith("/staff") for p in paths)  # pages are not API
