"""An imported PagerDuty account (`infra.account_import.Account`) as a stack file.

Pure: the account in, the stack file's text out. The file reproduces what PagerDuty
holds, so that adopting it changes nothing:

* every escalation policy, service and Apica integration carries `adopt:` with its
  PagerDuty id (an integration's as `SERVICEID.INTEGRATIONID`, the provider's import
  id), and the program imports it instead of creating a duplicate;
* keys derive from names as route names must be (`contract.vocabulary`); rule order,
  targets (users by e-mail, schedules by name), delays, loops, assignment strategy,
  team, urgency and support hours, timeouts, alert grouping and auto-pause are
  written in the stack file's words (`30m`, `off`), in full: no `defaults:`, so a
  later change of `defaults` cannot change an adopted service;
* descriptions are written even when empty (`""`): without one, Pulumi would set
  "Managed by Pulumi";
* a service without an Apica integration gets `integration: none` (adopting creates
  nothing); an Apica integration is found by its vendor's name;
* what PagerDuty holds and the stack file cannot say is a comment starting
  "PagerDuty:" where it applies (counted in `ImportedStack.notes`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from contract.maintenance import WEEKDAYS
from contract.vocabulary import APICA_VENDOR_NAME, ROUTE_NAME
from infra.account_import import SCHEDULE_TARGETS, USER_TARGETS, Account
from infra.model import (
    AUTO_PAUSE_TIMEOUTS,
    CONTENT_GROUPING_DAY_SECONDS,
    MAX_GROUPING_WINDOW_SECONDS,
    MAX_LOOPS,
    MAX_TIME_GROUPING_MINUTES,
    MIN_GROUPING_WINDOW_SECONDS,
    format_duration,
)
from infra.validate import default_integration_name
from infra.yaml_writer import Block, Comment, Flow, Seq, Value, dump, flow_text

MODELINE = "yaml-language-server: $schema=./schema.json"
NOTE = "PagerDuty: "
_MAX_KEY = 63
_POLICY_REFUSED = "\\/&<>"  # the provider refuses these in policy names
_URGENCIES = ("high", "low", "severity_based")


@dataclass(frozen=True)
class ImportedStack:
    """The stack file's text and what it holds."""

    text: str
    policies: int
    services: int
    integrations: int  # Apica integrations adopted
    without_integration: int  # services written with `integration: none`
    notes: int  # "PagerDuty:" comments


def import_stack(account: Account) -> ImportedStack:
    """The stack file that adopts `account` as it is."""
    return _Writer(account).write()


def route_key(name: str, taken: set[str], fallback: str) -> str:
    """A stack-file key from a display name: lower case, `-` for the rest, unique in `taken`."""
    ascii_name = unicodedata.normalize("NFKD", name.casefold()).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9_-]+", "-", ascii_name).strip("-_")[:_MAX_KEY].rstrip("-_")
    key = key if key and ROUTE_NAME.fullmatch(key) else fallback
    candidate, number = key, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = key[: _MAX_KEY - len(suffix)].rstrip("-_") + suffix
        number += 1
    taken.add(candidate)
    return candidate


class _Writer:
    def __init__(self, account: Account) -> None:
        self.account = account
        self.notes = 0
        policy_keys: set[str] = set()
        # By name, as PagerDuty lists them (services come in PagerDuty's order already).
        self.policies = sorted(
            account.policies.items(), key=lambda item: str(item[1].get("name", "")).casefold()
        )
        self.policy_key = {
            policy_id: route_key(str(policy.get("name", "")), policy_keys, "policy")
            for policy_id, policy in self.policies
        }
        self.apica_vendor = self._common_apica_vendor()

    # -- the document ------------------------------------------------------------------

    def write(self) -> ImportedStack:
        document = Block(spaced=True)
        if self.apica_vendor is not None:
            document.add("apica", Block().add("vendor_id", self.apica_vendor))
        policies = Block(spaced=True)
        for policy_id, policy in self.policies:
            policies.add(self.policy_key[policy_id], self._policy(policy))
        if policies.entries:
            document.add("escalation_policies", policies)
        services = Block(spaced=True)
        service_keys: set[str] = set()
        integrations = without = 0
        for service in self.account.services:
            key = route_key(str(service.get("name", "")), service_keys, "service")
            block, adopted = self._service(service)
            services.add(key, block)
            integrations += adopted
            without += not adopted
        document.add("services", services)
        text = dump(document, self._header())
        return ImportedStack(
            text, len(self.account.policies), len(self.account.services), integrations,
            without, self.notes,
        )

    def _header(self) -> list[str]:
        return [
            MODELINE,
            "",
            f"Imported from PagerDuty ({self.account.source}) by "
            f"`apica-pd import {self.account.selection.describe()}`.",
            "Every escalation policy, service and Apica integration carries `adopt:`, its",
            "PagerDuty id: the first `pulumi up` adopts (imports) them instead of creating",
            "duplicates. Settings are written out in full (no `defaults:`), empty",
            'descriptions as "" (without one, Pulumi would write "Managed by Pulumi").',
            f'Comments starting "{NOTE.strip()}" name what PagerDuty holds and a stack file',
            "cannot say: review them. Next: apica-pd validate, apica-pd plan (adopted",
            "resources show as imports), pulumi up.",
        ]

    def _note(self, block: Block | Seq, text: str) -> None:
        self.notes += 1
        entry = Comment(NOTE + text)
        if isinstance(block, Block):
            block.entries.append(entry)
        else:
            block.items.append(entry)

    # -- escalation policies -----------------------------------------------------------

    def _policy(self, policy: dict[str, Any]) -> Block:
        block = Block()
        block.add("name", self._name(block, str(policy.get("name", "")), policy=True))
        block.add("adopt", str(policy["id"]))
        block.add("description", str(policy.get("description") or ""))
        loops = policy.get("num_loops") or 0
        if not isinstance(loops, int) or not 0 <= loops <= MAX_LOOPS:
            self._note(block, f"num_loops is {loops!r}; the stack file takes 0 to {MAX_LOOPS}")
            loops = min(max(int(loops) if isinstance(loops, int) else 0, 0), MAX_LOOPS)
        block.add("loops", loops)
        teams = [ref for ref in policy.get("teams") or () if isinstance(ref, dict)]
        if teams:
            names = [self._team_name(ref) for ref in teams]
            if len(teams) > 1:
                self._note(block, f"the policy has {len(teams)} teams ({', '.join(names)}); "
                           "the stack file names one: the first")
            block.add("team", names[0])
        if policy.get("on_call_handoff_notifications") not in (None, "if_has_services"):
            self._note(block, "on-call handoff notifications: "
                       f"{policy['on_call_handoff_notifications']} (kept as it is)")
        rules = Seq()
        for number, rule in enumerate(policy.get("escalation_rules") or (), start=1):
            written = self._rule(rules, number, rule)
            if written is not None:
                rules.items.append(written)
        block.add("rules", rules)
        return block

    def _rule(self, rules: Seq, number: int, rule: dict[str, Any]) -> Block | None:
        targets = Seq()
        for target in rule.get("targets") or ():
            kind, target_id = target.get("type"), target.get("id")
            user = self.account.users.get(target_id) if kind in USER_TARGETS else None
            schedule = self.account.schedules.get(target_id) if kind in SCHEDULE_TARGETS else None
            if user is not None and user.get("email"):
                targets.items.append(Block().add("user", str(user["email"])))
            elif schedule is not None and schedule.get("name"):
                targets.items.append(Block().add("schedule", str(schedule["name"])))
            else:
                self._note(targets, f"rule {number} also targets {kind} {target_id}, which "
                           "the stack file cannot name (users by e-mail, schedules by name)")
        if not any(isinstance(item, Block) for item in targets.items):
            rules.items.extend(targets.items)  # the notes on its targets say why
            self._note(rules, f"rule {number} has no target the stack file can name; left out")
            return None
        block = Block()
        delay = rule.get("escalation_delay_in_minutes")
        if not isinstance(delay, int) or delay < 1:
            self._note(block, f"escalation delay {delay!r} minutes; the stack file's least is 1m")
            delay = 1
        block.add("delay", format_duration(delay * 60))
        strategy = rule.get("escalation_rule_assignment_strategy")
        kind = strategy.get("type") if isinstance(strategy, dict) else strategy
        if kind == "round_robin":
            block.add("assignment", "round_robin")
        block.add("targets", targets)
        return block

    def _team_name(self, ref: dict[str, Any]) -> str:
        team = self.account.teams.get(str(ref.get("id"))) or ref
        return str(team.get("name") or team.get("summary") or ref.get("id"))

    def _name(self, block: Block, name: str, *, policy: bool) -> str:
        """A display name as the provider takes it, or a cleaned one with a note."""
        cleaned = "".join(ch if ch.isprintable() else " " for ch in name)
        if policy:
            cleaned = cleaned.replace("&", " and ")
            cleaned = "".join("-" if ch in _POLICY_REFUSED else ch for ch in cleaned)
        cleaned = " ".join(cleaned.split()) or "unnamed"
        if cleaned != name:
            self._note(block, f"the name {name!r} has characters the provider refuses or "
                       "trims; written as below, so the first `pulumi up` renames it")
        return cleaned

    # -- services ----------------------------------------------------------------------

    def _service(self, service: dict[str, Any]) -> tuple[Block, bool]:
        block = Block()
        name = self._name(block, str(service.get("name", "")), policy=False)
        block.add("name", name)
        block.add("adopt", str(service["id"]))
        block.add("description", str(service.get("description") or ""))
        policy_id = str((service.get("escalation_policy") or {}).get("id"))
        block.add("escalation_policy", self.policy_key[policy_id])
        self._service_notes(block, service, policy_id)
        block.add("urgency", self._urgency(block, service))
        for field in ("auto_resolve_timeout", "acknowledgement_timeout"):
            seconds = service.get(field)
            block.add(field, format_duration(seconds) if seconds else "off")
        block.add("alert_grouping", self._grouping(block, service))
        block.add("auto_pause", self._auto_pause(block, service))
        integration = self._integration(block, service, name)
        block.add("integration", integration if integration is not None else "none")
        return block, integration is not None

    def _service_notes(self, block: Block, service: dict[str, Any], policy_id: str) -> None:
        if service.get("status") == "disabled":
            self._note(block, "the service is disabled; the stack file cannot say so, and "
                       "`pulumi up` leaves it disabled")
        play = service.get("response_play")
        if isinstance(play, dict) and play.get("id"):
            self._note(block, f"response play {play.get('summary') or play['id']} is set; the "
                       "provider sends none, so the first `pulumi up` clears it")
        policy_teams = {
            str(ref.get("id")) for ref in self.account.policies[policy_id].get("teams") or ()
        }
        own = [ref for ref in service.get("teams") or () if isinstance(ref, dict)]
        if own and {str(ref.get("id")) for ref in own} != policy_teams:
            names = ", ".join(self._team_name(ref) for ref in own)
            self._note(block, f"the service lists team(s) {names}, not its escalation "
                       "policy's; a stack file's service shows its policy's team")

    def _urgency(self, block: Block, service: dict[str, Any]) -> Value:
        rule = service.get("incident_urgency_rule") or {"type": "constant", "urgency": "high"}
        if rule.get("type") != "use_support_hours":
            urgency = rule.get("urgency")
            if urgency not in _URGENCIES:
                self._note(block, f"urgency {urgency!r} is not one the stack file knows; high")
                return "high"
            self._scheduled_actions(block, service, raises=False)
            return str(urgency)
        during = (rule.get("during_support_hours") or {}).get("urgency")
        outside = (rule.get("outside_support_hours") or {}).get("urgency")
        hours = service.get("support_hours") or {}
        start, end = str(hours.get("start_time") or ""), str(hours.get("end_time") or "")
        days = [d for d in hours.get("days_of_week") or () if isinstance(d, int) and 1 <= d <= 7]
        sayable = (
            during in _URGENCIES
            and outside in _URGENCIES
            and during != outside
            and re.fullmatch(r"\d\d:\d\d:00", start)
            and re.fullmatch(r"\d\d:\d\d:00", end)
            and start < end
            and days
            and hours.get("time_zone")
        )
        if not sayable:
            fallback = during if during in _URGENCIES else "high"
            self._note(block, f"support hours {hours!r} with urgency {during!r} during and "
                       f"{outside!r} outside cannot be said in a stack file; written as "
                       f"{fallback} all day, which the first `pulumi up` applies")
            return str(fallback)
        self._scheduled_actions(block, service, raises=during == "high" and outside == "low")
        return Block().add(
            "support_hours",
            Block()
            .add("time_zone", str(hours["time_zone"]))
            .add("days", Flow([WEEKDAYS[day - 1] for day in sorted(set(days))]))
            .add("start", start[:5])
            .add("end", end[:5])
            .add("during", str(during))
            .add("outside", str(outside)),
        )

    def _scheduled_actions(self, block: Block, service: dict[str, Any], *, raises: bool) -> None:
        """The program adds the raise-at-start action exactly for high during, low outside."""
        actions = [a for a in service.get("scheduled_actions") or () if isinstance(a, dict)]
        raising = [a for a in actions if _raises_at_start(a)]
        others = len(actions) - len(raising)
        if others:
            self._note(block, f"{others} other scheduled action(s); the first `pulumi up` "
                       "removes them (a stack file has only the raise at support hours start)")
        if raises and not raising:
            self._note(block, "no scheduled action raises urgency when support hours start; "
                       "the first `pulumi up` adds it (stack files do, for high during and "
                       "low outside)")
        elif raising and not raises:
            self._note(block, "a scheduled action raises urgency when support hours start; "
                       "the first `pulumi up` removes it (stack files have it only for high "
                       "during and low outside)")

    def _grouping(self, block: Block, service: dict[str, Any]) -> Value:
        """Always `none`, which leaves PagerDuty's grouping as it is: adopting changes
        nothing. Writing the value would make `pulumi up` create an alert grouping
        setting, so the equivalent is given in a note for whoever wants it managed."""
        params = service.get("alert_grouping_parameters") or {}
        if params.get("type"):
            value = self._grouping_value(block, params["type"], params.get("config") or {},
                                         minutes=True)
            if value != "none":
                self._note(block, f"the service groups alerts itself ({flow_text(value)}, "
                           "PagerDuty's deprecated service-level grouping), left as it is; "
                           "to manage it here write that as alert_grouping, and `pulumi up` "
                           "moves it to an alert grouping setting")
            return "none"
        setting = self.account.grouping_settings.get(str(service["id"]))
        if setting is None:
            return "none"
        shared = [ref for ref in setting.get("services") or () if isinstance(ref, dict)]
        others = "" if len(shared) < 2 else f", shared with {len(shared) - 1} other service(s)"
        value = self._grouping_value(block, str(setting.get("type")), setting.get("config") or {},
                                     minutes=False)
        self._note(block, f"alert grouping comes from alert grouping setting {setting.get('id')} "
                   f"({setting.get('name') or 'unnamed'}{others}, {flow_text(value)}), left as "
                   "it is; writing alert_grouping here would give the service its own setting")
        return "none"

    def _grouping_value(
        self, block: Block, kind: str, config: dict[str, Any], *, minutes: bool
    ) -> Value:
        """`alert_grouping:` from PagerDuty's type and config. The service's own parameters
        give the time timeout in minutes, a grouping setting in seconds."""
        if kind == "time":
            timeout = config.get("timeout") or 0
            seconds = timeout * 60 if minutes else timeout
            if not isinstance(seconds, int) or seconds < 0:
                seconds = 0
            if seconds % 60 or seconds > MAX_TIME_GROUPING_MINUTES * 60:
                self._note(block, f"time grouping timeout {timeout!r} cannot be said in whole "
                           "minutes up to 24h; rounded")
                seconds = min(max(60, round(seconds / 60) * 60), MAX_TIME_GROUPING_MINUTES * 60)
            return Flow({"type": "time",
                         "timeout": format_duration(seconds) if seconds else "until_resolved"})
        if kind not in ("intelligent", "content_based"):
            self._note(block, f"alert grouping of type {kind} cannot be said in a stack file; "
                       "written as none")
            return "none"
        value: dict[str, Any] = {"type": kind}
        if kind == "content_based":
            value["aggregate"] = str(config.get("aggregate") or "all")
            value["fields"] = [str(f) for f in config.get("fields") or ()] or ["summary"]
        elif list(config.get("iag_fields") or ["summary"]) != ["summary"]:
            self._note(block, f"intelligent grouping on fields {config['iag_fields']!r}; a "
                       "stack file groups on summary")
        window = config.get("time_window") or 0
        extra = (CONTENT_GROUPING_DAY_SECONDS,) if kind == "content_based" else ()
        if window and (
            MIN_GROUPING_WINDOW_SECONDS <= window <= MAX_GROUPING_WINDOW_SECONDS or window in extra
        ):
            value["time_window"] = format_duration(window)
        elif window:
            self._note(block, f"time window {window!r} s cannot be said in a stack file; "
                       "written as recommended")
        return Flow(value)

    def _auto_pause(self, block: Block, service: dict[str, Any]) -> Flow:
        pause = service.get("auto_pause_notifications_parameters") or {}
        if not pause.get("enabled"):
            return Flow({"enabled": False})
        timeout = pause.get("timeout")
        if timeout in AUTO_PAUSE_TIMEOUTS:
            return Flow({"enabled": True, "timeout": format_duration(timeout)})
        self._note(block, f"auto-pause timeout {timeout!r} (PagerDuty's recommended) cannot "
                   "be said in a stack file; written as the default, 5m")
        return Flow({"enabled": True})

    def _integration(self, block: Block, service: dict[str, Any], name: str) -> Block | None:
        integrations = [i for i in service.get("integrations") or () if isinstance(i, dict)]
        apica = [i for i in integrations if self._is_apica(i)]
        others = [i for i in integrations if not self._is_apica(i)]
        if others:
            listed = ", ".join(f"{i.get('name') or i.get('summary')!r} ({i.get('type')})"
                               for i in others)
            self._note(block, f"other integrations stay as they are, not managed here: {listed}")
        if not apica:
            block.comment("no Apica integration in PagerDuty: to route ASM checks here, write "
                          "`integration: {checks: ...}` (then `pulumi up` creates one)")
            return None
        chosen, *extra = apica
        if extra:
            listed = ", ".join(f"{i.get('name')!r} ({i.get('id')})" for i in extra)
            self._note(block, f"more Apica integrations, not managed here: {listed}")
        integration = Block()
        if chosen.get("name") and chosen["name"] != default_integration_name(name):
            integration.add("name", str(chosen["name"]))
        vendor = str(chosen["vendor"]["id"])
        if vendor != self.apica_vendor:
            integration.add("vendor_id", vendor)
        integration.add("adopt", f"{service['id']}.{chosen['id']}")
        integration.comment("route ASM checks here: checks: {ids: [...], guids: [...], "
                            "tags: [...]}")
        return integration

    def _is_apica(self, integration: dict[str, Any]) -> bool:
        vendor = integration.get("vendor")
        if not isinstance(vendor, dict) or not vendor.get("id"):
            return False
        found = self.account.vendors.get(str(vendor["id"])) or vendor
        name = str(found.get("name") or found.get("summary") or "")
        return name.casefold() == APICA_VENDOR_NAME.casefold()

    def _common_apica_vendor(self) -> str | None:
        """The Apica vendor id most adopted integrations use (for `apica.vendor_id`)."""
        used = Counter(
            str(integration["vendor"]["id"])
            for service in self.account.services
            for integration in _first_apica(service, self._is_apica)
        )
        return used.most_common(1)[0][0] if used else None


def _first_apica(
    service: dict[str, Any], is_apica: Callable[[dict[str, Any]], bool]
) -> Iterable[dict[str, Any]]:
    found = [i for i in service.get("integrations") or () if isinstance(i, dict) and is_apica(i)]
    return found[:1]


def _raises_at_start(action: dict[str, Any]) -> bool:
    at = action.get("at") or {}
    return (
        action.get("type") == "urgency_change"
        and action.get("to_urgency") == "high"
        and at.get("name") == "support_hours_start"
    )
