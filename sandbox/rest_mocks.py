"""Pulumi mocks that apply the program's resources to a PagerDuty REST API.

Used to run the unchanged program against the local sandbox (demo, end-to-end
tests): every `pagerduty:` resource the program registers is created through the
REST API v2 and the mock returns the API's ids and integration keys, and every
look-up (`get_vendor`, `get_user`, ...) is answered from the same API.

A resource registered with Pulumi's `import_` option (an `adopt:` of the stack file)
is imported instead, as the engine does since Pulumi 3.174: the object is read by its
id, compared field by field with what the program declares, and updated (PUT) only
where they differ. `imported`, `updated` and `created` record what happened, so a
test can show that adopting an account changed nothing in it.
"""

from __future__ import annotations

from typing import Any

import requests
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from contract.errors import ApicaError
from infra.mock_runtime import as_python
from infra.preview import LOOKUPS

_TIMEOUT = 10


class RestApplyError(ApicaError):
    """The REST API refused something the program declared."""


def _timeout_seconds(value: str | None) -> int | None:
    # The provider takes timeouts as strings where "null" disables them.
    return None if value in (None, "null") else int(value)


class PagerDutyRestMocks(Mocks):
    """Create resources in, and answer look-ups from, a PagerDuty REST API."""

    def __init__(self, api_url: str, token: str, session: requests.Session | None = None) -> None:
        self._api = api_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Token token={token}",
                "Accept": "application/vnd.pagerduty+json;version=2",
            }
        )
        # After the first failure the run is lost anyway; registrations still in flight
        # must not keep calling (the API may already be gone) or fail noisily.
        self._failed: str | None = None
        self.created: list[str] = []  # logical names
        self.imported: list[str] = []
        self.updated: dict[str, list[str]] = {}  # logical name -> fields that differed

    # -- resources -----------------------------------------------------------------

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        kinds = {
            "pagerduty:index/escalationPolicy:EscalationPolicy": (
                self._policy_body, self._create_policy, self._import_policy,
            ),
            "pagerduty:index/service:Service": (
                self._service_body, self._create_service, self._import_service,
            ),
            "pagerduty:index/serviceIntegration:ServiceIntegration": (
                self._integration_body, self._create_integration, self._import_integration,
            ),
        }
        if args.typ not in kinds:
            # Component resources and anything the API does not hold: echo the inputs.
            return f"{args.name}-id", inputs
        build, create, adopt = kinds[args.typ]
        # The REST API wants the snake_case keys and whole numbers the program wrote.
        props = as_python(inputs)
        body = build(props)
        if args.resource_id:
            resource_id, outputs, changed = adopt(args.resource_id, props, body)
            self.imported.append(args.name)
            if changed:
                self.updated[args.name] = changed
        else:
            resource_id, outputs = create(props, body)
            self.created.append(args.name)
        return resource_id, {**inputs, **outputs}

    # -- escalation policies -------------------------------------------------------

    def _policy_body(self, props: dict[str, Any]) -> dict[str, Any]:
        body = {
            "type": "escalation_policy",
            "name": props["name"],
            "description": props.get("description"),
            "num_loops": props.get("num_loops", 0),
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": rule["escalation_delay_in_minutes"],
                    "targets": rule["targets"],
                    **(
                        {
                            "escalation_rule_assignment_strategy": rule[
                                "escalation_rule_assignment_strategy"
                            ]
                        }
                        if rule.get("escalation_rule_assignment_strategy")
                        else {}
                    ),
                }
                for rule in props.get("rules", [])
            ],
        }
        if props.get("teams"):
            body["teams"] = [{"id": props["teams"], "type": "team_reference"}]
        return body

    def _create_policy(
        self, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post("/escalation_policies", "escalation_policy", body)
        return created["id"], {"htmlUrl": created.get("html_url", "")}

    def _import_policy(
        self, policy_id: str, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        path = f"/escalation_policies/{policy_id}"
        params = {"include[]": "escalation_rule_assignment_strategies"}
        live = self._request("GET", path, (200,), params=params)["escalation_policy"]
        changed = _differences(_policy_view(body), _policy_view(live))
        if changed:
            self._request("PUT", path, (200,), json={"escalation_policy": body})
        return policy_id, {"htmlUrl": live.get("html_url", "")}, changed

    # -- services --------------------------------------------------------------------

    def _service_body(self, props: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "service",
            "name": props["name"],
            "description": props.get("description"),
            "escalation_policy": {
                "id": props["escalation_policy"],
                "type": "escalation_policy_reference",
            },
            "auto_resolve_timeout": _timeout_seconds(props.get("auto_resolve_timeout")),
            "acknowledgement_timeout": _timeout_seconds(props.get("acknowledgement_timeout")),
        }
        for field in (
            "incident_urgency_rule",
            "scheduled_actions",
            "alert_grouping_parameters",
            "auto_pause_notifications_parameters",
            "alert_creation",
        ):
            if props.get(field) is not None:
                body[field] = props[field]
        if props.get("support_hours"):
            hours = dict(props["support_hours"])
            hours["days_of_week"] = hours.pop("days_of_weeks", [])
            body["support_hours"] = hours
        if body.get("scheduled_actions"):
            # The provider's list `ats` is the REST API's single `at`.
            body["scheduled_actions"] = [
                {"type": action["type"], "to_urgency": action["to_urgency"], "at": action["ats"][0]}
                for action in body["scheduled_actions"]
            ]
        return body

    def _create_service(
        self, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post("/services", "service", body)
        return created["id"], {"htmlUrl": created.get("html_url", "")}

    def _import_service(
        self, service_id: str, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        path = f"/services/{service_id}"
        params = {"include[]": "auto_pause_notifications_parameters"}
        live = self._request("GET", path, (200,), params=params)["service"]
        changed = _differences(_service_view(body, body), _service_view(live, body))
        if changed:
            self._request("PUT", path, (200,), json={"service": body})
        return service_id, {"htmlUrl": live.get("html_url", "")}, changed

    # -- integrations ----------------------------------------------------------------

    def _integration_body(self, props: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": props.get("type") or "events_api_v2_inbound_integration",
            "name": props["name"],
        }
        if props.get("vendor"):
            body["vendor"] = {"id": props["vendor"], "type": "vendor_reference"}
        return body

    def _create_integration(
        self, props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post(f"/services/{props['service']}/integrations", "integration", body)
        return created["id"], {
            "integrationKey": created["integration_key"],
            "htmlUrl": created.get("html_url", ""),
        }

    def _import_integration(
        self, import_id: str, props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        # The provider's importer splits SERVICEID.INTEGRATIONID.
        service_id, _, integration_id = import_id.partition(".")
        if props.get("service") != service_id:
            raise self._fail(
                f"import id {import_id} names service {service_id}, but the program puts the "
                f"integration on {props.get('service')}"
            )
        path = f"/services/{service_id}/integrations/{integration_id}"
        live = self._request("GET", path, (200,))["integration"]
        changed = _differences(
            {"name": body["name"], "vendor": (body.get("vendor") or {}).get("id")},
            {"name": live.get("name"), "vendor": (live.get("vendor") or {}).get("id")},
        )
        if changed:
            self._request("PUT", path, (200,), json={"integration": body})
        outputs = {"integrationKey": live["integration_key"], "htmlUrl": live.get("html_url", "")}
        return integration_id, outputs, changed

    # -- look-ups ------------------------------------------------------------------

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token not in LOOKUPS:
            raise RestApplyError(f"no sandbox answer for look-up {args.token}")
        kind, field = LOOKUPS[args.token]
        collection = "escalation_policies" if kind == "escalation_policy" else f"{kind}s"
        wanted = str(args.args.get(field, ""))
        found = self._get(f"/{collection}", collection, wanted)
        exact = [item for item in found if str(item.get(field, "")).lower() == wanted.lower()]
        if exact:
            return self._lookup_result(exact[0]), []
        if found and args.token.endswith("getVendor"):
            # The real provider silently takes the first partial match for vendors.
            return self._lookup_result(found[0]), []
        what = kind.replace("_", " ")
        raise self._fail(f"Unable to locate any {what} with the {field}: {wanted}")

    @staticmethod
    def _lookup_result(item: dict[str, Any]) -> dict[str, Any]:
        keep = ("id", "name", "email", "type", "description", "time_zone")
        return {key: item[key] for key in keep if key in item}

    # -- HTTP ------------------------------------------------------------------------

    def _post(self, path: str, wrapper: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, (200, 201), json={wrapper: body})[wrapper]

    def _get(self, path: str, collection: str, query: str) -> list[dict[str, Any]]:
        params = {"query": query, "limit": 100}
        return self._request("GET", path, (200,), params=params)[collection]

    def _request(self, method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> Any:
        if self._failed is not None:
            raise RestApplyError(f"{method} {path} not sent: {self._failed}")
        try:
            response = self._session.request(method, self._api + path, timeout=_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise self._fail(f"{method} {path} failed: {exc.__class__.__name__}") from None
        if response.status_code not in ok:
            raise self._fail(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json()

    def _fail(self, message: str) -> RestApplyError:
        self._failed = self._failed or message
        return RestApplyError(message)


# -- comparing what the program declares with what PagerDuty holds ---------------------


def _differences(declared: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """The fields whose values differ, as the provider compares them after a read."""
    return [name for name in declared if _plain(declared[name]) != _plain(live.get(name))]


def _plain(value: Any) -> Any:
    """Nulls dropped and "" as null, the way Terraform's state holds them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if _plain(v) is not None}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return None if value == "" else value


def _policy_view(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": policy.get("name"),
        "description": policy.get("description"),
        "num_loops": policy.get("num_loops") or 0,
        "teams": [ref.get("id") for ref in policy.get("teams") or ()],
        "escalation_rules": [
            {
                "delay": rule.get("escalation_delay_in_minutes"),
                "targets": [(t.get("type"), t.get("id")) for t in rule.get("targets") or ()],
                "assignment": (rule.get("escalation_rule_assignment_strategy") or {}).get(
                    "type", "assign_to_everyone"
                ),
            }
            for rule in policy.get("escalation_rules") or ()
        ],
    }


def _service_view(service: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """The fields the provider reads back, limited to the optional ones the program set
    (it keeps e.g. `alert_grouping_parameters` only when set)."""
    view = {
        "name": service.get("name"),
        "description": service.get("description"),
        "escalation_policy": (service.get("escalation_policy") or {}).get("id"),
        "auto_resolve_timeout": service.get("auto_resolve_timeout"),
        "acknowledgement_timeout": service.get("acknowledgement_timeout"),
    }
    for name in (
        "incident_urgency_rule",
        "support_hours",
        "scheduled_actions",
        "alert_grouping_parameters",
    ):
        if name in declared:
            view[name] = service.get(name)
    if "auto_pause_notifications_parameters" in declared:
        pause = service.get("auto_pause_notifications_parameters") or {}
        enabled = bool(pause.get("enabled"))
        view["auto_pause_notifications_parameters"] = {
            "enabled": enabled,
            "timeout": pause.get("timeout") if enabled else None,
        }
    return view
