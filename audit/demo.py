"""Demo events: weeks of a believable enforcement estate, as native ingest batches (pure).

No database here. `demo_batches` yields, source by source, lists of native events in the order
the source emitted them; the load_demo command sends them through the real ingest path. The
same end time, window, seed and scale always give the same events.

Work is in integer milliseconds since the epoch and timestamps are formatted once per minute,
because about 100,000 events are generated on every demo load.
"""

import math
import random
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from typing import NamedTuple

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

DEMO_DAYS = 30
MIN_DAYS = 2
DEFAULT_SEED = 20240601
MAX_BATCH = 1000  # the ingest API's limit per request

# Traffic by hour of day (UTC), relative; normalised to a mean of 1 below.
_DIURNAL_RAW = (
    0.35, 0.30, 0.28, 0.27, 0.30, 0.40, 0.60, 0.85, 1.10, 1.30, 1.45, 1.50,
    1.55, 1.60, 1.60, 1.55, 1.45, 1.30, 1.15, 1.00, 0.85, 0.70, 0.55, 0.45,
)  # fmt: skip
DIURNAL = tuple(w * 24 / sum(_DIURNAL_RAW) for w in _DIURNAL_RAW)

SERVICES = ("payments", "checkout", "identity", "ledger-api", "web-frontend", "search")
_SERVICE_WEIGHTS = tuple(accumulate((3, 3, 2, 2, 4, 2)))


@dataclass(frozen=True)
class Rule:
    policy: str
    name: str
    severity: str
    hit_rate: float  # share of decisions in which the rule finds something wrong
    target: str  # what the rule judges: a key of _TARGETS
    mode: str = "enforce"
    effect: str = "deny"  # what a hit does when enforced: deny or mutate
    weight: float = 1.0  # share of the source's decisions
    fix: str = ""  # the remediation bot's action, when one fixes violations of the rule
    reason: str = ""


@dataclass(frozen=True)
class DemoSource:
    name: str
    kind: str
    environment: str
    heartbeat_interval_seconds: int
    decisions_per_day: int
    violations_per_day: float
    latency_median_ms: float
    latency_sigma: float  # of the lognormal: the long tail
    weekend_factor: float
    inventory_total: int
    inventory_type: str
    failure_reason: str  # why a decision could not be enforced
    traced: bool  # whether decisions carry a W3C trace id (request paths do, admission does not)
    rules: tuple[Rule, ...]
    # Where events happen when not in the source's own environment: (name, cumulative weight).
    environments: tuple[tuple[str, float], ...] = ()


# The catalogue reads better as a table than with one argument a line.
# fmt: off
def _k8s_rules(policy_security: str, policy_practices: str) -> tuple[Rule, ...]:
    return (
        Rule(policy_security, "disallow-privileged", "critical", 0.004, "workload",
             reason="container securityContext.privileged is true"),
        Rule(policy_security, "restrict-host-path", "high", 0.006, "workload",
             reason="hostPath volume mounts /var/run/docker.sock"),
        Rule(policy_practices, "require-labels", "low", 0.03, "workload",
             fix="add-labels", reason="missing labels: team, app.kubernetes.io/part-of"),
        Rule(policy_practices, "require-resource-limits", "medium", 0.025, "workload",
             fix="set-default-limits", reason="container has no memory limit"),
        Rule(policy_practices, "disallow-latest-tag", "medium", 0.015, "workload",
             reason="image tag :latest is not allowed"),
    )


DEMO_SOURCES: tuple[DemoSource, ...] = (
    DemoSource(
        name="gateway-prod", kind="gateway", environment="prod", heartbeat_interval_seconds=300,
        decisions_per_day=850, violations_per_day=6, latency_median_ms=0.6, latency_sigma=0.8,
        weekend_factor=0.8, inventory_total=180, inventory_type="routes",
        failure_reason="policy plugin error; request passed through", traced=True,
        rules=(
            Rule("api-authn", "jwt-required", "high", 0.012, "route", weight=3,
                 reason="missing or invalid bearer token"),
            Rule("api-authn", "mtls-required", "high", 0.004, "route",
                 fix="enable-route-mtls", reason="client certificate not presented"),
            Rule("api-authn", "token-audience", "medium", 0.006, "route",
                 reason="token audience does not match the route"),
            Rule("api-traffic", "rate-limit", "medium", 0.02, "route", weight=3,
                 reason="rate limit 600/min exceeded"),
            Rule("api-traffic", "ip-allowlist", "high", 0.002, "route",
                 fix="block-client-ip", reason="source address not in the allowlist"),
            Rule("api-traffic", "request-size-limit", "low", 0.003, "route",
                 reason="request body larger than 1 MiB"),
            Rule("pci-scope", "pci-cardholder-scope", "critical", 0.001, "route",
                 reason="cardholder data requested from outside the PCI zone"),
            Rule("pci-scope", "pan-masking", "critical", 0.0008, "route", mode="dry_run",
                 reason="response would carry an unmasked PAN"),
        ),
    ),
    DemoSource(
        name="opa-prod", kind="opa", environment="prod", heartbeat_interval_seconds=300,
        decisions_per_day=600, violations_per_day=10, latency_median_ms=1.8, latency_sigma=0.7,
        weekend_factor=0.6, inventory_total=310, inventory_type="services and cloud resources",
        failure_reason="evaluation timed out after 250 ms; fail-open", traced=True,
        rules=(
            Rule("service-authz", "service-allowlist", "high", 0.01, "call", weight=3,
                 reason="caller is not allowed to call this service"),
            Rule("service-authz", "admin-endpoints-restricted", "high", 0.003, "call",
                 reason="admin endpoint called without the admin role"),
            Rule("service-authz", "pii-access-purpose", "high", 0.006, "call", weight=2,
                 reason="PII read without a declared purpose"),
            Rule("cloud-config", "kms-key-rotation", "high", 0.03, "kms-key",
                 fix="enable-key-rotation", reason="KMS key rotation is disabled"),
            Rule("cloud-config", "iam-no-wildcard", "critical", 0.01, "iam-role",
                 reason="IAM policy grants Action: *"),
            Rule("cloud-config", "audit-logging-enabled", "high", 0.01, "bucket",
                 fix="enable-audit-logging", reason="access logging is off for this bucket"),
        ),
    ),
    DemoSource(
        name="gatekeeper-prod", kind="gatekeeper", environment="prod",
        heartbeat_interval_seconds=600, decisions_per_day=340, violations_per_day=14,
        latency_median_ms=4.0, latency_sigma=0.6, weekend_factor=0.4, inventory_total=420,
        inventory_type="workloads",
        failure_reason="webhook timed out; failurePolicy Ignore admitted the request",
        traced=False,
        rules=(
            *_k8s_rules("k8s-pod-security", "k8s-best-practices"),
            Rule("k8s-pod-security", "disallow-host-network", "high", 0.003, "workload",
                 reason="hostNetwork is true"),
            Rule("k8s-pod-security", "require-run-as-nonroot", "medium", 0.02, "workload",
                 mode="dry_run", reason="runAsNonRoot is not set"),
            Rule("k8s-best-practices", "restrict-image-registries", "high", 0.005, "workload",
                 reason="image is not from registry.example.com"),
        ),
    ),
    DemoSource(
        name="kyverno-staging", kind="kyverno", environment="staging",
        heartbeat_interval_seconds=300, decisions_per_day=230, violations_per_day=12,
        latency_median_ms=6.0, latency_sigma=0.65, weekend_factor=0.4, inventory_total=260,
        inventory_type="workloads",
        failure_reason="webhook timed out; failurePolicy Ignore admitted the request",
        traced=False, environments=(("staging", 0.7), ("dev", 1.0)),
        rules=(
            Rule("kyverno-pod-security", "disallow-privileged", "critical", 0.01, "workload",
                 reason="privileged mode is disallowed"),
            Rule("kyverno-pod-security", "restrict-host-path", "high", 0.01, "workload",
                 reason="hostPath volumes are forbidden"),
            Rule("kyverno-pod-security", "drop-all-capabilities", "medium", 0.04, "workload",
                 mode="warn", reason="containers must drop ALL capabilities"),
            Rule("kyverno-best-practices", "require-labels", "low", 0.08, "workload",
                 effect="mutate", fix="add-labels", reason="missing label: team"),
            Rule("kyverno-best-practices", "require-resource-limits", "medium", 0.05,
                 "workload", effect="mutate", fix="set-default-limits",
                 reason="no resource limits; defaults cpu=500m memory=512Mi apply"),
            Rule("kyverno-best-practices", "disallow-latest-tag", "medium", 0.04, "workload",
                 mode="dry_run", reason="image tag :latest is not allowed"),
            Rule("kyverno-best-practices", "require-probes", "low", 0.06, "workload",
                 mode="dry_run", reason="livenessProbe is not set"),
            Rule("kyverno-network", "require-network-policy", "medium", 0.03, "workload",
                 fix="generate-networkpolicy", reason="namespace has no default-deny policy"),
            Rule("kyverno-network", "disallow-nodeport", "medium", 0.01, "workload",
                 reason="Service type NodePort is not allowed"),
        ),
    ),
    DemoSource(
        name="ci-gate", kind="ci", environment="ci", heartbeat_interval_seconds=900,
        decisions_per_day=160, violations_per_day=20, latency_median_ms=1500,
        latency_sigma=0.9, weekend_factor=0.15, inventory_total=64,
        inventory_type="repositories", failure_reason="scanner unavailable; gate skipped",
        traced=False,
        rules=(
            Rule("supply-chain", "no-critical-cves", "critical", 0.06, "image", weight=2,
                 fix="open-dependency-bump-pr", reason="CVE-2024-3094 (critical) in xz-utils"),
            Rule("supply-chain", "signed-images", "high", 0.02, "image",
                 reason="image has no cosign signature"),
            Rule("supply-chain", "sbom-present", "medium", 0.04, "image", mode="warn",
                 reason="no SBOM attached to the image"),
            Rule("supply-chain", "pinned-base-image", "low", 0.08, "image", mode="dry_run",
                 reason="base image is not pinned by digest"),
            Rule("iac-security", "terraform-encryption", "high", 0.03, "terraform",
                 fix="open-encryption-pr", reason="aws_s3_bucket without server-side encryption"),
            Rule("iac-security", "s3-public-access-block", "critical", 0.008, "terraform",
                 reason="bucket allows public ACLs"),
            Rule("iac-security", "security-group-open-ingress", "high", 0.015, "terraform",
                 reason="ingress 0.0.0.0/0 on port 22"),
        ),
    ),
)
# fmt: on


# What each kind of rule target looks like: (resource, action) pairs per service, and subjects.
def _target_resources(target: str, service: str) -> tuple[tuple[str, str], ...]:
    if target == "workload":
        names = (
            *(
                f"deployment/{service}{suffix}"
                for suffix in ("", "-worker", "-consumer", "-canary")
            ),
            *(f"cronjob/{service}-{job}" for job in ("reconcile", "report", "cleanup")),
            f"statefulset/{service}-cache",
            f"job/{service}-migrate",
        )
        return tuple((name, action) for name in names for action in ("CREATE", "UPDATE", "UPDATE"))
    if target == "route":
        return (
            (f"route/GET /v1/{service}", "GET"),
            (f"route/GET /v1/{service}/{{id}}", "GET"),
            (f"route/POST /v1/{service}", "POST"),
            (f"route/PUT /v1/{service}/{{id}}", "PUT"),
            (f"route/DELETE /v1/{service}/{{id}}", "DELETE"),
            (f"route/GET /v2/{service}/search", "GET"),
        )
    if target == "call":
        return (
            (f"{service}:/internal/v1/lookup", "GET"),
            (f"{service}:/internal/v1/records", "POST"),
            (f"{service}:/internal/v1/export", "GET"),
            (f"{service}:/admin/reindex", "POST"),
        )
    if target == "kms-key":
        return tuple(
            (f"aws:kms:key/{service}-{use}", "apply") for use in ("data", "backups", "logs")
        )
    if target == "iam-role":
        return tuple((f"aws:iam:role/{service}-{use}", "apply") for use in ("runtime", "deploy"))
    if target == "bucket":
        uses = ("exports", "backups", "logs")
        return tuple((f"aws:s3:bucket/{service}-{use}", "apply") for use in uses)
    if target == "image":
        return tuple((f"image/registry.example.com/{service}:1.{n}.0", "build") for n in range(12))
    if target == "terraform":
        return tuple(
            (f"terraform/{service}/{module}.tf", "plan")
            for module in ("main", "storage", "network", "iam")
        )
    raise ValueError(f"unknown rule target {target!r}")


_SUBJECTS = {
    "workload": (
        "system:serviceaccount:argocd:argocd-application-controller",
        "system:serviceaccount:kube-system:replicaset-controller",
        "user:oncall@example.com",
    ),
    "route": ("client/web-app", "client/checkout-ios", "client/android-app", "client/partner-acme"),
    "call": tuple(f"spiffe://prod.example.com/ns/{s}/sa/{s}" for s in SERVICES),
    "kms-key": ("terraform@ci.example.com",),
    "iam-role": ("terraform@ci.example.com",),
    "bucket": ("terraform@ci.example.com",),
    "image": ("pipeline/github-actions",),
    "terraform": ("pipeline/atlantis",),
}
_TARGETS = {
    target: {service: _target_resources(target, service) for service in SERVICES}
    for target in _SUBJECTS
}


@dataclass(frozen=True)
class Scenarios:
    """When the story's incidents happen, in milliseconds since the epoch: [start, end)."""

    deny_storm: tuple[int, int]  # gateway-prod denies checkout-ios: expired JWTs, then rate limit
    latency_spike: tuple[int, int]  # opa-prod: a slow service-authz release, rolled forward
    outage: tuple[int, int]  # kyverno-staging sends nothing at all
    remediation_loop: tuple[int, int]  # kyverno-staging keeps re-labelling one deployment

    STORM_SOURCE = "gateway-prod"
    STORM_SERVICE = "checkout"
    SPIKE_SOURCE = "opa-prod"
    OUTAGE_SOURCE = "kyverno-staging"
    LOOP_SOURCE = "kyverno-staging"
    LOOP_RESOURCE = "deployment/search-indexer"

    def described(self) -> list[tuple[str, tuple[int, int]]]:
        """Each incident with a line that tells a person where to look."""
        return [
            (f"deny storm on {self.STORM_SOURCE} ({self.STORM_SERVICE})", self.deny_storm),
            (f"latency spike on {self.SPIKE_SOURCE}", self.latency_spike),
            (f"outage of {self.OUTAGE_SOURCE}, no heartbeats", self.outage),
            (
                f"remediation loop on {self.LOOP_SOURCE} ({self.LOOP_RESOURCE})",
                self.remediation_loop,
            ),
        ]


def demo_scenarios(*, end: datetime, days: int = DEMO_DAYS) -> Scenarios:
    """The incidents of the story: day -3, -8, -12 and -5 of the 30-day demo, each at an hour of
    the day when it would plausibly happen. A shorter window (tests) puts them at the same
    fraction of it, so it still holds all of them."""
    end_ms = _ms(end)

    def window(days_back: int, at: tuple[int, int], minutes: int) -> tuple[int, int]:
        day = (end_ms - days_back * days * DAY // DEMO_DAYS) // DAY * DAY
        start = day + at[0] * HOUR + at[1] * MINUTE
        if start + minutes * MINUTE > end_ms:
            start -= DAY  # a short window ends before the incident would: take the day before
        return start, start + minutes * MINUTE

    return Scenarios(
        deny_storm=window(3, at=(14, 20), minutes=120),
        latency_spike=window(8, at=(15, 0), minutes=240),
        outage=window(12, at=(2, 10), minutes=190),
        remediation_loop=window(5, at=(8, 0), minutes=480),
    )


@dataclass(frozen=True)
class _Window:
    start: int
    end: int
    scale: float
    scenarios: Scenarios

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


def demo_events(
    source: DemoSource,
    *,
    end: datetime,
    days: int = DEMO_DAYS,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
) -> list[dict]:
    """Every event `source` emits in the `days` before `end`, in emission order, with
    source_seq, source_epoch and event_id filled in."""
    if days < MIN_DAYS:
        raise ValueError(f"the demo needs a window of at least {MIN_DAYS} days")
    end_ms = _ms(end)
    window = _Window(end_ms - days * DAY, end_ms, scale, demo_scenarios(end=end, days=days))
    rng = random.Random(f"{seed}:{source.name}")
    deployments, versions = _deployments(source, window, rng)
    items = [
        *deployments,
        *_decisions(source, window, rng, versions),
        *_violations(source, window, rng),
        *_heartbeats(source, window, rng),
        *_inventory(source, window, rng),
    ]
    if source.name == Scenarios.STORM_SOURCE:
        items += _deny_storm(source, window, rng, versions)
    if source.name == Scenarios.LOOP_SOURCE:
        items += _remediation_loop(source, window)
    return _sequence(source, window, items)


def demo_batches(
    *,
    end: datetime,
    days: int = DEMO_DAYS,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    batch_size: int = MAX_BATCH,
) -> Iterator[tuple[DemoSource, list[dict]]]:
    """(source, batch) pairs: each source's events in emission order, `batch_size` at a time."""
    for source in DEMO_SOURCES:
        events = demo_events(source, end=end, days=days, seed=seed, scale=scale)
        for offset in range(0, len(events), batch_size):
            yield source, events[offset : offset + batch_size]


# An item is (emitted at, event, dropped): the time the source sends the event, which for a
# violation is when it was detected, not when it began; dropped events use up a source_seq but
# never arrive, which is what audit completeness (M8) measures.
_Item = tuple[int, dict, bool]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@lru_cache(maxsize=65536)
def _minute_prefix(minute: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))


def _iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds; strftime runs once per minute, not once per event."""
    minute, rest = divmod(ms, MINUTE)
    return f"{_minute_prefix(minute)}{rest // SECOND:02d}.{rest % SECOND:03d}Z"


def _policies(source: DemoSource) -> list[str]:
    return list(dict.fromkeys(rule.policy for rule in source.rules))


class _Versions:
    """Which version of each policy was active at a given time."""

    def __init__(self) -> None:
        self._times: dict[str, list[int]] = {}
        self._versions: dict[str, list[str]] = {}

    def add(self, policy: str, since: int, version: str) -> None:
        self._times.setdefault(policy, []).append(since)
        self._versions.setdefault(policy, []).append(version)

    def at(self, policy: str, ms: int) -> str:
        return self._versions[policy][bisect_right(self._times[policy], ms) - 1]


def _business_hour(rng: random.Random, window: _Window) -> int:
    """A random weekday working hour in the window: when people deploy policies."""
    for _ in range(20):
        ms = window.start + int(rng.random() * (window.end - window.start - HOUR))
        moment = time.gmtime(ms // 1000)
        if moment.tm_wday < 5 and 8 <= moment.tm_hour < 17:
            return ms
    return ms


def _deployments(
    source: DemoSource, window: _Window, rng: random.Random
) -> tuple[list[_Item], _Versions]:
    """A few releases per policy, committed minutes (now and then hours) before activation."""
    versions = _Versions()
    items: list[_Item] = []
    for policy in _policies(source):
        major, minor, patch = rng.randint(1, 3), rng.randint(0, 9), 0
        versions.add(policy, 0, f"{major}.{minor}.{patch}")
        count = max(1, round(rng.randint(2, 4) * window.days / DEMO_DAYS))
        times = [_business_hour(rng, window) for _ in range(count)]
        if source.name == Scenarios.SPIKE_SOURCE and policy == "service-authz":
            # The spike starts with a release that slows every decision and ends with its fix.
            times += [window.scenarios.latency_spike[0], window.scenarios.latency_spike[1]]
        for ms in sorted(times):
            previous = f"{major}.{minor}.{patch}"
            if rng.random() < 0.7:
                patch += 1
            else:
                minor, patch = minor + 1, 0
            version = f"{major}.{minor}.{patch}"
            lead = rng.lognormvariate(math.log(12 * MINUTE), 0.7)
            if rng.random() < 0.1:
                lead = rng.uniform(1, 6) * HOUR  # stuck in review or a slow pipeline: breaks M5
            versions.add(policy, ms, version)
            event = {
                "kind": "policy_deployment",
                "occurred_at": _iso(ms),
                "committed_at": _iso(ms - int(lead)),
                "policy": policy,
                "policy_version": version,
                "subject": "release-bot",
                "attributes": {
                    "commit": f"{rng.getrandbits(28):07x}",
                    "previous_version": previous,
                },
            }
            items.append((ms, event, False))
    return items, versions


def _hours(window: _Window) -> Iterator[tuple[int, int, bool]]:
    """Each hour of the window: its start, its hour of day and whether it is a weekend."""
    for hour_start in range(window.start, window.end, HOUR):
        moment = time.gmtime(hour_start // 1000)
        yield hour_start, moment.tm_hour, moment.tm_wday >= 5


def _decisions(
    source: DemoSource, window: _Window, rng: random.Random, versions: _Versions
) -> Iterator[_Item]:
    rules = source.rules
    rule_weights = tuple(accumulate(rule.weight for rule in rules))
    per_hour = source.decisions_per_day * window.scale / 24
    log_median = math.log(source.latency_median_ms)
    spike = window.scenarios.latency_spike if source.name == Scenarios.SPIKE_SOURCE else (0, 0)
    environments = [name for name, _ in source.environments]
    environment_weights = [weight for _, weight in source.environments]
    for hour_start, hour, weekend in _hours(window):
        expected = per_hour * DIURNAL[hour] * (source.weekend_factor if weekend else 1.0)
        for _ in range(int(expected + rng.random())):
            ms = hour_start + int(rng.random() * HOUR)
            if ms >= window.end:
                continue
            rule = rng.choices(rules, cum_weights=rule_weights)[0]
            service = rng.choices(SERVICES, cum_weights=_SERVICE_WEIGHTS)[0]
            resource, action = rng.choice(_TARGETS[rule.target][service])
            latency = rng.lognormvariate(log_median, source.latency_sigma)
            if rng.random() < 0.01:
                latency *= 8  # garbage collection, cold caches: the tail p99 shows
            in_spike = spike[0] <= ms < spike[1]
            if in_spike:
                latency *= 30
            outcome, enforced, reason = "allow", True, None
            if rng.random() < (0.03 if in_spike else 0.0015):
                outcome, enforced, reason = "error", False, source.failure_reason
                latency = max(latency, 250.0)
            elif rng.random() < rule.hit_rate:
                outcome, reason = _hit_outcome(rule), rule.reason
            event = {
                "kind": "decision",
                "occurred_at": _iso(ms),
                "policy": rule.policy,
                "rule": rule.name,
                "policy_version": versions.at(rule.policy, ms),
                "outcome": outcome,
                "mode": rule.mode,
                "enforced": enforced,
                "latency_ms": round(latency, 3),
                "service": service,
                "resource": resource,
                "subject": rng.choice(_SUBJECTS[rule.target]),
                "action": action,
            }
            if reason:
                event["reason"] = reason
            if rule.target == "workload":
                event["namespace"] = service
            if source.traced:
                event["trace_id"] = f"{rng.getrandbits(128):032x}"
            if environments:
                event["environment"] = rng.choices(environments, cum_weights=environment_weights)[0]
            # The OPA decision log buffer overflows while evaluations are slow.
            yield ms, event, in_spike and rng.random() < 0.04


def _hit_outcome(rule: Rule) -> str:
    if rule.mode == "dry_run":
        return "audit"
    if rule.mode == "warn":
        return "warn"
    return rule.effect


def _deny_storm(
    source: DemoSource, window: _Window, rng: random.Random, versions: _Versions
) -> Iterator[_Item]:
    """A checkout-ios release sends expired tokens and retries hard: the gateway denies them
    (jwt-required) and rate-limits the retries, until the client version is blocked."""
    start, end = window.scenarios.deny_storm
    rules = {rule.name: rule for rule in source.rules}
    reasons = {
        "jwt-required": "JWT expired (exp is 2 h in the past)",
        "rate-limit": "rate limit 600/min exceeded for client/checkout-ios",
    }
    routes = _TARGETS["route"][Scenarios.STORM_SERVICE]
    count = int(1500 * window.scale * (end - start) / HOUR)
    for _ in range(count):
        ms = start + int(rng.random() * (end - start))
        rule = rules["jwt-required" if rng.random() < 0.55 else "rate-limit"]
        denied = rng.random() < (0.8 if rule.name == "jwt-required" else 0.9)
        resource, action = rng.choice(routes)
        event = {
            "kind": "decision",
            "occurred_at": _iso(ms),
            "policy": rule.policy,
            "rule": rule.name,
            "policy_version": versions.at(rule.policy, ms),
            "outcome": "deny" if denied else "allow",
            "mode": rule.mode,
            "enforced": True,
            "latency_ms": round(rng.lognormvariate(math.log(source.latency_median_ms), 0.8), 3),
            "service": Scenarios.STORM_SERVICE,
            "resource": resource,
            "subject": "client/checkout-ios",
            "action": action,
            "trace_id": f"{rng.getrandbits(128):032x}",
            "attributes": {"client_version": "5.2.0"},
        }
        if denied:
            event["reason"] = reasons[rule.name]
        yield ms, event, False
    # The gateway flags the storm as a violation; it ends when a bot blocks the client version.
    rule = replace(rules["jwt-required"], fix="block-client-version")
    finding = _Finding(rule, Scenarios.STORM_SERVICE, routes[0][0], f"{source.name}-storm", None)
    yield _violation(finding, began=start, detected=start + 4 * MINUTE, status="open")
    reason = "blocked client/checkout-ios 5.2.0 until a fixed release ships"
    yield _remediation(finding, ms=end, status="succeeded", reason=reason, attempt=1)
    yield _violation(finding, began=end, detected=end + MINUTE, status="resolved")


# How long after a violation begins it is detected, by severity: (median, sigma) of a lognormal.
_DETECT_LAG = {
    "critical": (75 * SECOND, 0.6),
    "high": (4 * MINUTE, 0.9),
    "medium": (20 * MINUTE, 1.0),
    "low": (60 * MINUTE, 1.0),
    "info": (60 * MINUTE, 1.0),
}
# How likely a violation is fixed by hand, and the median time it takes, by severity.
_MANUAL_FIX = {
    "critical": (0.9, 3 * HOUR),
    "high": (0.8, 12 * HOUR),
    "medium": (0.65, 2 * DAY),
    "low": (0.5, 4 * DAY),
    "info": (0.3, 7 * DAY),
}


def _detect_lag(rng: random.Random, severity: str) -> int:
    if severity == "critical" and rng.random() < 0.08:
        return int(rng.uniform(6, 45) * MINUTE)  # a missed audit cycle: breaks the M10 target
    median, sigma = _DETECT_LAG[severity]
    return int(rng.lognormvariate(math.log(median), sigma))


class _Finding(NamedTuple):
    """One violation: what is wrong where, and the id its later events refer to."""

    rule: Rule
    service: str
    resource: str
    violation_id: str
    environment: str | None


def _located(finding: _Finding, event: dict) -> dict:
    if finding.rule.target == "workload":
        event["namespace"] = finding.service
    if finding.environment:
        event["environment"] = finding.environment
    return event


def _violation(finding: _Finding, *, began: int, detected: int, status: str) -> _Item:
    """A violation event, sent when detected; `began` is its occurred_at."""
    rule = finding.rule
    event = {
        "kind": "violation",
        "occurred_at": _iso(began),
        "detected_at": _iso(detected),
        "policy": rule.policy,
        "rule": rule.name,
        "severity": rule.severity,
        "status": status,
        "service": finding.service,
        "resource": finding.resource,
        "reason": rule.reason,
        "attributes": {"violation_id": finding.violation_id},
    }
    return detected, _located(finding, event), False


def _remediation(finding: _Finding, *, ms: int, status: str, reason: str, attempt: int) -> _Item:
    rule = finding.rule
    event = {
        "kind": "remediation",
        "occurred_at": _iso(ms),
        "policy": rule.policy,
        "rule": rule.name,
        "status": status,
        "service": finding.service,
        "resource": finding.resource,
        "subject": "remediation-bot",
        "action": rule.fix,
        "reason": reason,
        "attributes": {"violation_id": finding.violation_id, "attempt": attempt},
    }
    return ms, _located(finding, event), False


_REMEDIATION_REASONS = {
    "succeeded": "applied and verified",
    "failed": "patch rejected by the API server: field is immutable",
    "skipped": "resource is covered by an active exception",
}


def _violations(source: DemoSource, window: _Window, rng: random.Random) -> Iterator[_Item]:
    """Violations found by the source, each later resolved (by a bot or by hand) or left open.

    A resolved violation is a second event with the same violation_id: its occurred_at is when
    the fix happened and its detected_at when the source saw it.
    """
    rules = source.rules
    weights = tuple(accumulate(rule.hit_rate * rule.weight for rule in rules))
    count = int(source.violations_per_day * window.scale * window.days + rng.random())
    environments = [name for name, _ in source.environments]
    environment_weights = [weight for _, weight in source.environments]
    for number in range(count):
        rule = rng.choices(rules, cum_weights=weights)[0]
        service = rng.choices(SERVICES, cum_weights=_SERVICE_WEIGHTS)[0]
        resource = rng.choice(_TARGETS[rule.target][service])[0]
        environment = (
            rng.choices(environments, cum_weights=environment_weights)[0] if environments else None
        )
        finding = _Finding(rule, service, resource, f"{source.name}-v{number}", environment)
        began = window.start + int(rng.random() * (window.end - window.start))
        detected = began + _detect_lag(rng, rule.severity)
        if detected >= window.end:
            continue
        yield _violation(finding, began=began, detected=detected, status="open")
        fixed = None
        if rule.fix:
            at = detected + int(rng.lognormvariate(math.log(3 * MINUTE), 0.6))
            for attempt in (1, 2):
                roll = rng.random()
                status = "succeeded" if roll < 0.86 else "failed" if roll < 0.96 else "skipped"
                reason = _REMEDIATION_REASONS[status]
                yield _remediation(finding, ms=at, status=status, reason=reason, attempt=attempt)
                if status == "succeeded":
                    fixed = at + int(rng.uniform(20, 90) * SECOND)
                if status != "failed":
                    break
                at += 30 * MINUTE  # the bot retries once, later
        if fixed is None:
            chance, median = _MANUAL_FIX[rule.severity]
            if rng.random() < chance:
                fixed = detected + int(rng.lognormvariate(math.log(median), 0.8))
        if fixed is not None:
            seen = fixed + int(rng.uniform(30, 300) * SECOND)
            yield _violation(finding, began=fixed, detected=seen, status="resolved")


def _remediation_loop(source: DemoSource, window: _Window) -> Iterator[_Item]:
    """Kyverno re-adds a label every few minutes and Argo CD self-heal strips it again: one
    deployment is remediated again and again, each time "successfully"."""
    start, end = window.scenarios.remediation_loop
    rule = next(rule for rule in source.rules if rule.name == "require-labels")
    reason = "label team restored; Argo CD self-heal removes it again"
    for attempt, began in enumerate(range(start, end, 12 * MINUTE), start=1):
        finding = _Finding(
            rule, "search", Scenarios.LOOP_RESOURCE, f"{source.name}-loop{attempt}", "staging"
        )
        fixed = began + 95 * SECOND
        yield _violation(finding, began=began, detected=began + 40 * SECOND, status="open")
        yield _remediation(finding, ms=fixed, status="succeeded", reason=reason, attempt=attempt)
        yield _violation(finding, began=fixed, detected=fixed + 20 * SECOND, status="resolved")


def _heartbeats(source: DemoSource, window: _Window, rng: random.Random) -> Iterator[_Item]:
    """One per interval; the counters are filled in by _sequence, which knows what was sent."""
    interval = source.heartbeat_interval_seconds * SECOND
    for tick in range(window.start + rng.randrange(interval), window.end - 1500, interval):
        ms = tick + rng.randrange(1500)
        event = {
            "kind": "heartbeat",
            "occurred_at": _iso(ms),
            "interval_seconds": source.heartbeat_interval_seconds,
        }
        yield ms, event, False


def _inventory(source: DemoSource, window: _Window, rng: random.Random) -> Iterator[_Item]:
    """A daily count of resources and of those with an enforcement hook; coverage improves."""
    first_midnight = (window.start // DAY + 1) * DAY
    for day, midnight in enumerate(range(first_midnight, window.end, DAY)):
        ms = midnight + 7 * MINUTE + rng.randrange(MINUTE)
        if ms >= window.end:
            break
        progress = (midnight - window.start) / (window.end - window.start)
        total = int(source.inventory_total * (1 + 0.003 * day))
        coverage = min(0.97, max(0.85, 0.86 + 0.1 * progress + rng.uniform(-0.01, 0.01)))
        event = {
            "kind": "inventory",
            "occurred_at": _iso(ms),
            "resources_total": total,
            "resources_covered": math.ceil(total * coverage),
            "attributes": {"resource_type": source.inventory_type},
        }
        yield ms, event, False


def _sequence(source: DemoSource, window: _Window, items: list[_Item]) -> list[dict]:
    """Put events in emission order and number them as the source would.

    Each boot of the engine is an epoch whose source_seq counts from 1; heartbeats report how many
    events the epoch emitted (dropped ones included) and how many it dropped. The outage source
    sends nothing during its outage and boots a new epoch when it comes back.
    """
    outage = window.scenarios.outage if source.name == Scenarios.OUTAGE_SOURCE else None
    boots = [window.start] + ([outage[1]] if outage else [])
    epochs = [
        f"{source.name}@{time.strftime('%Y%m%dT%H%MZ', time.gmtime(b // 1000))}" for b in boots
    ]
    items.sort(key=itemgetter(0))
    events: list[dict] = []
    epoch, seq, dropped_total = "", 0, 0
    for ms, event, dropped in items:
        if outage and outage[0] <= ms < outage[1]:
            continue
        boot_epoch = epochs[bisect_right(boots, ms) - 1]
        if boot_epoch != epoch:
            epoch, seq, dropped_total = boot_epoch, 0, 0
        seq += 1
        if dropped:
            dropped_total += 1
            continue
        event["event_id"] = f"{epoch}-{seq}"
        event["source_seq"] = seq
        event["source_epoch"] = epoch
        if event["kind"] == "heartbeat":
            event["emitted_total"] = seq
            event["dropped_total"] = dropped_total
        events.append(event)
    return events


def demo_end(now: datetime | None = None) -> datetime:
    """Now (or `now`) in UTC, rounded down to the minute: the end of the demo window."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
