"""Pulumi mocks that apply the program's resources to a PagerDuty REST API as the provider does.

Used to run the unchanged program against the local sandbox (demo, tests): every
`pagerduty:` resource the program registers is created with the body the real
provider sends and read back the way it reads it (terraform-provider-pagerduty's
create and read functions, listed in the notes on the provider's calls), and the mock
returns the API's ids and integration keys. Look-ups ask what the provider asks and
take what it would take (`infra.provider_lookups`), so an apply that passes here does
not fail on a look-up under `pulumi up`.

A resource registered with Pulumi's `import_` option (an `adopt:` of the stack file)
is imported instead, as the engine does since Pulumi 3.174: the object is read by its
id, compared field by field with what the program declares, and updated (PUT) only
where they differ. `imported`, `updated` and `created` record what happened, so a
test can show that adopting an account changed nothing in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import requests
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from contract.errors import ApicaError
from infra.mock_runtime import as_python
from infra.provider_lookups import LOOKUPS, not_found, pick

_TIMEOUT = 10
# pulumi-pagerduty's default description for policies and services.
PULUMI_DESCRIPTION = "Managed by Pulumi"
# What each look-up lists, with the provider's query parameters, and whether it reads
# every page (`more`) or only the first.
_LOOKUP_LISTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "user": ("users", {}, False),
    "schedule": ("schedules", {}, False),
    "team": ("teams", {}, False),
    "escalation_policy": ("escalation_policies", {"include[]": "teams"}, False),
    "service": ("services", {"include[]": "teams", "limit": 100}, True),
}
# What a policy's and a service's read asks for (resource_pagerduty_*.go fetch functions).
POLICY_INCLUDES = {"include[]": "escalation_rule_assignment_strategies"}
SERVICE_INCLUDES = {"include[]": "auto_pause_notifications_parameters"}
# The config keys the provider sends per grouping type (its Go structs have no omitempty).
_GROUPING_CONFIG = {
    "time": {"timeout": 0},
    "intelligent": {"time_window": 0, "iag_fields": ["summary"]},
    "content_based": {"time_window": 0, "aggregate": "", "fields": []},
}


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
        Body = Callable[[dict[str, Any]], dict[str, Any]]
        Create = Callable[[dict[str, Any], dict[str, Any]], tuple[str, dict[str, Any]]]
        Adopt = Callable[
            [str, dict[str, Any], dict[str, Any]], tuple[str, dict[str, Any], list[str]]
        ]
        self._kinds: dict[str, tuple[Body, Create, Adopt | None]] = {
            "pagerduty:index/escalationPolicy:EscalationPolicy": (
                self._policy_body,
                self._create_policy,
                self._import_policy,
            ),
            "pagerduty:index/service:Service": (
                self._service_body,
                self._create_service,
                self._import_service,
            ),
            "pagerduty:index/serviceIntegration:ServiceIntegration": (
                self._integration_body,
                self._create_integration,
                self._import_integration,
            ),
            "pagerduty:index/alertGroupingSetting:AlertGroupingSetting": (
                self._grouping_body,
                self._create_grouping,
                None,
            ),
        }

    # -- resources -----------------------------------------------------------------

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ not in self._kinds:
            # Component resources and anything the API does not hold: echo the inputs.
            return f"{args.name}-id", inputs
        build, create, adopt = self._kinds[args.typ]
        # The REST API wants the snake_case keys and whole numbers the program wrote.
        props = as_python(inputs)
        body = build(props)
        if args.resource_id:
            if adopt is None:
                raise self._fail(f"{args.name}: {args.typ} cannot be imported here")
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
        return {
            "name": props["name"],
            "description": props.get("description", PULUMI_DESCRIPTION),
            "num_loops": props.get("num_loops", 0),
            # No omitempty in the provider's struct: null when the policy has no team.
            "teams": [{"id": props["teams"], "type": "team_reference"}]
            if props.get("teams")
            else None,
            "escalation_rules": [
                {
                    "escalation_delay_in_minutes": rule["escalation_delay_in_minutes"],
                    "targets": rule["targets"],
                    **(
                        {"escalation_rule_assignment_strategy": strategy}
                        if (strategy := rule.get("escalation_rule_assignment_strategy"))
                        else {}
                    ),
                }
                for rule in props.get("rules", [])
            ],
        }

    def _create_policy(
        self, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post("/escalation_policies", "escalation_policy", body)
        read = self._read(
            f"/escalation_policies/{created['id']}", "escalation_policy", POLICY_INCLUDES
        )
        for rule in read.get("escalation_rules", []):
            if not isinstance(rule.get("escalation_rule_assignment_strategy", {}), dict):
                # The provider decodes it into a struct: a bare string fails its read.
                raise self._fail(
                    f"GET /escalation_policies/{read['id']}: "
                    "escalation_rule_assignment_strategy is not an object"
                )
        return read["id"], {"htmlUrl": read.get("html_url", "")}

    def _import_policy(
        self, policy_id: str, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        path = f"/escalation_policies/{policy_id}"
        live = self._read(path, "escalation_policy", POLICY_INCLUDES)
        changed = _differences(_policy_view(body), _policy_view(live))
        if changed:
            self._request("PUT", path, (200,), json={"escalation_policy": body})
        return policy_id, {"htmlUrl": live.get("html_url", "")}, changed

    # -- services --------------------------------------------------------------------

    def _service_body(self, props: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": props["name"],
            "description": props.get("description", PULUMI_DESCRIPTION),
            "escalation_policy": {
                "id": props["escalation_policy"],
                "type": "escalation_policy_reference",
            },
            "auto_resolve_timeout": _timeout_seconds(props.get("auto_resolve_timeout")),
            "acknowledgement_timeout": _timeout_seconds(props.get("acknowledgement_timeout")),
            "response_play": None,  # no omitempty: always sent
        }
        for field in (
            "incident_urgency_rule",
            "alert_grouping_parameters",
            "auto_pause_notifications_parameters",
            "alert_creation",
        ):
            if props.get(field) is not None:
                body[field] = props[field]
        pause = body.get("auto_pause_notifications_parameters")
        if pause is not None:
            body["auto_pause_notifications_parameters"] = {
                "enabled": pause["enabled"],
                "timeout": pause.get("timeout") if pause["enabled"] else None,
            }
        if props.get("support_hours"):
            hours = dict(props["support_hours"])
            hours["days_of_week"] = hours.pop("days_of_weeks", [])
            body["support_hours"] = hours
        rule = body.get("incident_urgency_rule") or {}
        if props.get("scheduled_actions"):
            # The provider's list `ats` is the REST API's single `at`.
            body["scheduled_actions"] = [
                {"type": action["type"], "to_urgency": action["to_urgency"], "at": action["ats"][0]}
                for action in props["scheduled_actions"]
            ]
        elif rule.get("type") == "use_support_hours":
            # make([]*ScheduledAction, 1) in the provider: one null action for "none".
            body["scheduled_actions"] = [None]
        return body

    def _create_service(
        self, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post("/services", "service", body)
        read = self._read(f"/services/{created['id']}", "service", SERVICE_INCLUDES)
        if not isinstance(read.get("escalation_policy"), dict):
            # flattenService dereferences it: the real provider would crash here.
            raise self._fail(f"GET /services/{read['id']}: the answer has no escalation_policy")
        return read["id"], {"htmlUrl": read.get("html_url", "")}

    def _import_service(
        self, service_id: str, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[str]]:
        path = f"/services/{service_id}"
        live = self._read(path, "service", SERVICE_INCLUDES)
        changed = _differences(_service_view(body, body), _service_view(live, body))
        if changed:
            self._request("PUT", path, (200,), json={"service": body})
        return service_id, {"htmlUrl": live.get("html_url", "")}, changed

    # -- integrations ----------------------------------------------------------------

    def _integration_body(self, props: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": props["name"],
            "type": props.get("type") or "service_integration",
            "service": {"id": props["service"], "type": "service"},
        }
        if props.get("vendor"):
            body["vendor"] = {"id": props["vendor"], "type": "vendor"}
        return body

    def _create_integration(
        self, props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        path = f"/services/{props['service']}/integrations"
        created = self._post(path, "integration", body)
        return self._integration_outputs(
            f"{path}/{created['id']}", self._read(f"{path}/{created['id']}", "integration", {})
        )

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
        live = self._read(path, "integration", {})
        # The provider reads a vendor's id when there is a vendor, else the type.
        kind = "vendor" if body.get("vendor") else "type"
        changed = _differences(
            {"name": body["name"], kind: _integration_kind(body)},
            {"name": live.get("name"), kind: _integration_kind(live)},
        )
        if changed:
            self._request("PUT", path, (200,), json={"integration": body})
        _, outputs = self._integration_outputs(path, live)
        return integration_id, outputs, changed

    def _integration_outputs(self, path: str, read: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key = read.get("integration_key")
        if not key:
            raise self._fail(f"GET {path}: the answer has no integration_key")
        vendor = read.get("vendor")
        kind = {"vendor": vendor["id"]} if vendor else {"type": read.get("type")}
        return read["id"], {"integrationKey": key, "htmlUrl": read.get("html_url", ""), **kind}

    # -- alert grouping settings -----------------------------------------------------

    def _grouping_body(self, props: dict[str, Any]) -> dict[str, Any]:
        kind = props["type"]
        body: dict[str, Any] = {
            "name": props.get("name"),
            "description": props.get("description", "Managed by Terraform"),
            "type": kind,
            "config": {**_GROUPING_CONFIG[kind], **props.get("config", {})},
            "services": [{"id": service_id} for service_id in props["services"]],
        }
        if not body["name"]:
            body.pop("name")  # omitted when empty
        return body

    def _create_grouping(
        self, _props: dict[str, Any], body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        created = self._post("/alert_grouping_settings", "alert_grouping_setting", body)
        read = self._read(f"/alert_grouping_settings/{created['id']}", "alert_grouping_setting", {})
        return read["id"], {}

    # -- look-ups ------------------------------------------------------------------

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token not in LOOKUPS:
            raise RestApplyError(f"no sandbox answer for look-up {args.token}")
        kind, field = LOOKUPS[args.token]
        wanted = str(args.args.get(field, ""))
        pages = list(self._vendor_pages() if kind == "vendor" else self._query_pages(kind, wanted))
        found = pick(kind, pages, wanted)
        if found is None:
            refusal = not_found(kind, wanted, [item for page in pages for item in page])
            raise self._fail(str(refusal))
        return self._lookup_result(found), []

    def _vendor_pages(self) -> Iterator[list[dict[str, Any]]]:
        # get_vendor pages the whole catalogue with no `query`, moving by the answer's limit.
        offset, more = 0, True
        while more:
            answer = self._list("/vendors", {"limit": 100, "offset": offset})
            yield answer["vendors"]
            more, offset = bool(answer.get("more")), offset + int(answer["limit"])

    def _query_pages(self, kind: str, wanted: str) -> Iterator[list[dict[str, Any]]]:
        collection, params, paged = _LOOKUP_LISTS[kind]
        offset = 0
        while True:
            query = {**params, "query": wanted, **({"offset": offset} if offset else {})}
            answer = self._list(f"/{collection}", query)
            yield answer[collection]
            if not (paged and answer.get("more")):
                return
            offset += int(answer["limit"])

    @staticmethod
    def _lookup_result(item: dict[str, Any]) -> dict[str, Any]:
        keep = ("id", "name", "email", "type", "description", "time_zone")
        return {key: item[key] for key in keep if key in item}

    # -- HTTP ------------------------------------------------------------------------

    def _post(self, path: str, wrapper: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, (200, 201), json={wrapper: body})[wrapper]

    def _read(self, path: str, wrapper: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._request("GET", path, (200,), params=params)[wrapper]

    def _list(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._request("GET", path, (200,), params=params)

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

    @property
    def first_failure(self) -> str | None:
        """The failure that stopped the run (later calls fail only because of it)."""
        return self._failed

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
    if "scheduled_actions" in view:
        # The provider's `[null]` (support hours, no actions) is PagerDuty's `[]`.
        view["scheduled_actions"] = [a for a in view["scheduled_actions"] or () if a is not None]
    if "auto_pause_notifications_parameters" in declared:
        pause = service.get("auto_pause_notifications_parameters") or {}
        enabled = bool(pause.get("enabled"))
        view["auto_pause_notifications_parameters"] = {
            "enabled": enabled,
            "timeout": pause.get("timeout") if enabled else None,
        }
    return view


def _integration_kind(integration: dict[str, Any]) -> Any:
    """What the provider keeps of an integration's kind: its vendor's id, else its type."""
    vendor = integration.get("vendor")
    return vendor.get("id") if isinstance(vendor, dict) else integration.get("type")
