"""Reads for the catalogue pages: frameworks, one control, the rule catalogue and one rule.

Figures and verdicts come from posture.selectors (so a page shows what the API and the
executive dashboard show); this module adds what only these pages need: the control tree, a
rule's decisions by outcome and by service, its policy versions, its triage. Rollups only,
except a rule's policy versions, which are read from the ledger (a partial index holds the
deployment events by policy).
"""

import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.db.models import Count, Max, Q, QuerySet, Sum

from audit.models import Event, EventKind
from posture import sli
from posture.models import (
    Control,
    DecisionDaily,
    DecisionHourly,
    Rule,
    RuleControl,
    Scope,
    SloTarget,
    TriageLabel,
    TriageState,
    ViolationEpisode,
)
from posture.selectors import (
    DAY,
    QUANTILES,
    RuleCounts,
    ScopeUnknown,
    SliScope,
    SourceCounts,
    Target,
    Window,
    _rule_verdict,  # the verdict the framework score counts, so both pages agree
    figures_from,
    frameworks_status,
    mapping_version_current,
    rule_counts,
    targets_for,
)

_NO_ENGINES = SourceCounts()  # rule pages show no engine-level figures (M6, M8, M9)
# The rule-level figures the control and rule pages show (M1 at p95), in figures_from's order.
KEY_SLIS = ("M1", "M2", "M3", "M4", "M10")
POLICY_VERSIONS_SHOWN = 20
SERVICES_SHOWN = 15
TRIAGE_SHOWN = 5


# ---------------------------------------------------------------------------------------------
# Frameworks


def frameworks_overview(*, window: Window) -> list[dict]:
    """Each framework's status (framework_status) over the window, by name, with how many
    controls its score weighs and how many of those have failing rules."""
    overview = []
    for status in frameworks_status(window=window):
        rows = control_tree(status)
        overview.append(
            {
                **status,
                "leaves": sum(1 for row in rows if row.leaf),
                "failing": len(controls_needing_attention(rows)),
            }
        )
    return overview


@dataclass(frozen=True)
class ControlRow:
    """One mapped control of a framework's tree, with its status (sli.ControlStatusDict)."""

    code: str
    title: str
    parent: str | None
    depth: int
    leaf: bool
    status: dict
    violations_open: int
    rules: int

    @property
    def state(self) -> str:
        """ok, bad (a rule fails) or nodata: the colour of its row."""
        if self.status["failing"]:
            return "bad"
        return "nodata" if self.status["share"] is None else "ok"


def control_tree(status: dict) -> list[ControlRow]:
    """framework_status's controls as a tree in document order (depth from the parents).

    Every ancestor of a mapped control is mapped too (it holds the rules below it), so each
    row's parent is an earlier row."""
    depth: dict[str, int] = {}
    parents = {control["parent"] for control in status["controls"]}
    rows = []
    for control in status["controls"]:
        depth[control["code"]] = depth.get(control["parent"], -1) + 1
        rows.append(
            ControlRow(
                code=control["code"],
                title=control["title"],
                parent=control["parent"],
                depth=depth[control["code"]],
                leaf=control["code"] not in parents,
                status=control["status"],
                violations_open=control["violations_open"],
                rules=len(control["rules"]),
            )
        )
    return rows


def controls_needing_attention(rows: list[ControlRow]) -> list[ControlRow]:
    """Leaf controls with failing rules, worst first (lowest share, then most failing)."""
    failing = [row for row in rows if row.leaf and row.status["failing"]]
    return sorted(failing, key=lambda row: (row.status["share"] or 0, -row.status["failing"]))


# ---------------------------------------------------------------------------------------------
# One control


@dataclass(frozen=True)
class RuleRow:
    """One rule as a control or rule page shows it: its verdict and key figures, judged."""

    rule: Rule
    verdict: bool | None
    figures: list[dict]
    decisions: int
    violations_open: int
    controls: list[str] = field(default_factory=list)  # codes it is mapped to under the control

    @property
    def state(self) -> str:
        return {True: "ok", False: "bad"}.get(self.verdict, "nodata")


@dataclass(frozen=True)
class ControlDetail:
    control: Control
    path: list[Control]  # from the framework's top control down to the parent
    children: list[dict]  # mapped controls right under it: code, title, status
    status: sli.ControlStatus
    rules: list[RuleRow]
    mapping_version: str | None


def _key_figures(counts: RuleCounts, targets: dict[str, Target]) -> list[dict]:
    """M1 p95, M2, M3, M4 and M10, each with the target its rule verdict reads (if any).

    As selectors._rule_verdict judges: the deny rate only against a target set for the rule."""
    out = []
    for figure in figures_from(counts, _NO_ENGINES):
        if figure.sli not in KEY_SLIS or (figure.sli == "M1" and not figure.name.endswith("p95")):
            continue
        code = figure.sli
        target = targets.get(code)
        if target is not None and code == "M3" and target.scope != Scope.RULE:
            target = None
        out.append(
            {
                **figure.as_dict(),
                "target": target.as_dict() if target else None,
                "meets_target": sli.meets_target(
                    figure=figure, target=target.target, direction=target.direction
                )
                if target
                else None,
            }
        )
    return out


def _violations_open(rule_ids: set[int], *, at: datetime) -> dict[int, int]:
    rows = (
        ViolationEpisode.objects.filter(rule_id__in=rule_ids, opened_at__lt=at)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=at))
        .values("rule_id")
        .annotate(n=Count("pk"))
    )
    return {row["rule_id"]: row["n"] for row in rows}


def rule_rows(
    *, rules: list[Rule], window: Window, controls: dict[int, list[str]] | None = None
) -> list[RuleRow]:
    """Verdict and key figures of each rule over the window, failing first."""
    ids = {rule.pk for rule in rules}
    totals: dict[int, RuleCounts] = defaultdict(RuleCounts)
    for (_, rule_id), counts in rule_counts(window=window, scope=SliScope(), rule_ids=ids).items():
        totals[rule_id].add(counts)
    all_targets = list(SloTarget.objects.all())
    open_now = _violations_open(ids, at=window.end)
    rows = []
    for rule in rules:
        targets = targets_for(SliScope(rule=rule.pk), all_targets)
        counts = totals.get(rule.pk) or RuleCounts()
        rows.append(
            RuleRow(
                rule=rule,
                verdict=_rule_verdict(counts, targets),
                figures=_key_figures(counts, targets),
                decisions=counts.decisions,
                violations_open=open_now.get(rule.pk, 0),
                controls=(controls or {}).get(rule.pk, []),
            )
        )
    order = {False: 0, None: 1, True: 2}
    return sorted(rows, key=lambda row: (order[row.verdict], str(row.rule)))


def control_detail(*, slug: str, code: str, window: Window) -> ControlDetail:
    """A control, its place in the tree and the rules mapped to it or below it."""
    control = (
        Control.objects.select_related("framework").filter(framework__slug=slug, code=code).first()
    )
    if control is None:
        raise ScopeUnknown(f"no control {code!r} in framework {slug!r}")
    tree = {c.pk: c for c in Control.objects.filter(framework_id=control.framework_id)}
    children: dict[int | None, list[int]] = defaultdict(list)
    for item in sorted(tree.values(), key=operator.attrgetter("position")):
        children[item.parent_id].append(item.pk)
    path = []
    parent = tree[control.pk].parent_id
    while parent is not None:
        path.insert(0, tree[parent])
        parent = tree[parent].parent_id

    below: dict[int, int] = {}  # control pk -> the child of this control it lies under
    frontier = [(child, child) for child in children[control.pk]]
    while frontier:
        pk, top = frontier.pop()
        below[pk] = top
        frontier += [(child, top) for child in children[pk]]

    version = mapping_version_current()
    mapped: dict[int, list[str]] = defaultdict(list)
    by_child: dict[int, set[int]] = defaultdict(set)
    for rule_id, control_id in RuleControl.objects.filter(
        mapping_version=version, control_id__in=[control.pk, *below]
    ).values_list("rule_id", "control_id"):
        mapped[rule_id].append(tree[control_id].code)
        if control_id in below:
            by_child[below[control_id]].add(rule_id)
    rules = list(Rule.objects.filter(pk__in=mapped))
    rows = rule_rows(rules=rules, window=window, controls=mapped)
    verdicts = {row.rule.pk: row.verdict for row in rows}
    child_rows = [
        {
            "code": tree[pk].code,
            "title": tree[pk].title,
            "status": sli.control_status(
                rule_results=[verdicts[rule] for rule in sorted(by_child[pk])]
            ).as_dict(),
        }
        for pk in children[control.pk]
        if by_child[pk]
    ]
    return ControlDetail(
        control=control,
        path=path,
        children=child_rows,
        status=sli.control_status(
            rule_results=[verdicts[rule] for rule in sorted(verdicts)], control=control.code
        ),
        rules=rows,
        mapping_version=version.version if version else None,
    )


# ---------------------------------------------------------------------------------------------
# The rule catalogue


def rules_catalogue(
    *, severity: str = "", category: str = "", uncatalogued: bool = False
) -> QuerySet:
    """The catalogue, filtered; uncatalogued rules are those events named before anyone owned
    them (most recently seen first, since those need an owner soonest)."""
    rules = Rule.objects.all()
    if severity:
        rules = rules.filter(severity=severity)
    if category:
        rules = rules.filter(category=category)
    if uncatalogued:
        return rules.filter(catalogued=False).order_by("-created_at", "policy", "name")
    return rules.order_by("policy", "name")


def rules_decisions(*, rule_ids: list[int], window: Window) -> dict[int, dict]:
    """Decisions and denies of each rule over a window of whole days, and the last day seen."""
    rows = (
        DecisionDaily.objects.filter(
            rule_id__in=rule_ids, day__gte=window.start.date(), day__lt=window.end.date()
        )
        .values("rule_id")
        .annotate(
            n_decisions=Sum("decisions"),
            n_denies=Sum("decisions", filter=Q(outcome="deny")),
            last_day=Max("day"),
        )
    )
    return {
        row["rule_id"]: {
            "decisions": row["n_decisions"],
            "denies": row["n_denies"] or 0,
            "last_day": row["last_day"],
        }
        for row in rows
    }


def rules_uncatalogued_count() -> int:
    return Rule.objects.filter(catalogued=False).count()


# ---------------------------------------------------------------------------------------------
# One rule


@dataclass(frozen=True)
class RuleActivity:
    """A rule's decisions over a window: by bucket and outcome, by outcome, by service."""

    buckets: list[datetime]
    by_outcome_series: dict[str, list[int]]  # outcome -> decisions per bucket
    by_outcome: list[tuple[str, int]]  # most first
    by_service: list[tuple[str, int]]  # most first, at most SERVICES_SHOWN
    latency: dict[str, list[float | None]]  # "p50"... -> ms per bucket (upper bucket bound)
    row: RuleRow

    @property
    def decisions(self) -> int:
        return sum(n for _, n in self.by_outcome)


def rule_activity(*, rule: Rule, window: Window) -> RuleActivity:
    if window.unit == DAY:
        rows = DecisionDaily.objects.filter(
            rule_id=rule.pk, day__gte=window.start.date(), day__lt=window.end.date()
        ).values_list("day", "outcome")
    else:
        rows = DecisionHourly.objects.filter(
            rule_id=rule.pk, bucket__gte=window.start, bucket__lt=window.end
        ).values_list("bucket", "outcome")
    buckets = window.buckets()
    index = {bucket: i for i, bucket in enumerate(buckets)}
    series: dict[str, list[int]] = {}
    for when, outcome, n in rows.annotate(n=Sum("decisions")).order_by():
        key = when if isinstance(when, datetime) else datetime.combine(when, time.min, tzinfo=UTC)
        series.setdefault(outcome or "none", [0] * len(buckets))[index[key]] += n
    by_outcome = sorted(((o, sum(v)) for o, v in series.items()), key=lambda x: (-x[1], x[0]))

    services = (
        DecisionHourly.objects.filter(
            rule_id=rule.pk, bucket__gte=window.start, bucket__lt=window.end
        )
        .values("service")
        .annotate(n=Sum("decisions"))
        .order_by("-n", "service")[:SERVICES_SHOWN]
    )
    by_bucket = rule_counts(window=window, scope=SliScope(rule=rule.pk), rule_ids={rule.pk})
    latency: dict[str, list[float | None]] = {}
    for q in QUANTILES:
        latency[f"p{round(q * 100)}"] = [
            sli.decision_latency(counts=by_bucket[(b, rule.pk)].latency, quantile=q).value
            if (b, rule.pk) in by_bucket
            else None
            for b in buckets
        ]
    totals = RuleCounts()
    for counts in by_bucket.values():
        totals.add(counts)
    targets = targets_for(SliScope(rule=rule.pk))
    row = RuleRow(
        rule=rule,
        verdict=_rule_verdict(totals, targets),
        figures=_key_figures(totals, targets),
        decisions=totals.decisions,
        violations_open=_violations_open({rule.pk}, at=window.end).get(rule.pk, 0),
    )
    return RuleActivity(
        buckets=buckets,
        by_outcome_series=dict(sorted(series.items())),
        by_outcome=by_outcome,
        by_service=[(s["service"], s["n"]) for s in services],
        latency=latency,
        row=row,
    )


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    activated_at: datetime
    environment: str
    source: str
    event_id: int
    current: bool  # the newest in its environment


def rule_policy_versions(*, rule: Rule) -> list[PolicyVersion]:
    """The policy's deployments, newest first: which version became active where and when."""
    if not rule.policy:
        return []
    events = (
        Event.objects.filter(kind=EventKind.POLICY_DEPLOYMENT, policy=rule.policy)
        .order_by("-occurred_at", "-pk")
        .values_list("pk", "policy_version", "occurred_at", "environment", "source__name")
    )[:POLICY_VERSIONS_SHOWN]
    seen: set[str] = set()
    versions = []
    for pk, version, occurred_at, environment, source in events:
        versions.append(
            PolicyVersion(
                version=version or "(not named)",
                activated_at=occurred_at,
                environment=environment or "",
                source=source,
                event_id=pk,
                current=(environment or "") not in seen,
            )
        )
        seen.add(environment or "")
    return versions


@dataclass(frozen=True)
class RuleControlLink:
    framework_slug: str
    framework_name: str
    code: str
    title: str


def rule_controls(*, rule: Rule) -> list[RuleControlLink]:
    """The framework controls the current mapping maps the rule to."""
    mappings = (
        RuleControl.objects.filter(rule=rule, mapping_version=mapping_version_current())
        .select_related("control__framework")
        .order_by("control__framework__name", "control__position")
    )
    return [
        RuleControlLink(
            framework_slug=m.control.framework.slug,
            framework_name=m.control.framework.name,
            code=m.control.code,
            title=m.control.title,
        )
        for m in mappings
    ]


@dataclass(frozen=True)
class RuleTriage:
    false_positives: int
    confirmed: int
    latest: list[TriageState]

    @property
    def triaged(self) -> int:
        return self.false_positives + self.confirmed


def rule_triage(*, rule: Rule, window: Window) -> RuleTriage:
    """Triage labels of the rule's denies that happened in the window, and the latest few."""
    states = TriageState.objects.filter(
        rule_id=rule.pk, occurred_at__gte=window.start, occurred_at__lt=window.end
    )
    counts = states.aggregate(
        false_positives=Count("pk", filter=Q(label=TriageLabel.FALSE_POSITIVE)),
        confirmed=Count("pk", filter=Q(label=TriageLabel.CONFIRMED)),
    )
    return RuleTriage(
        false_positives=counts["false_positives"],
        confirmed=counts["confirmed"],
        latest=list(states.order_by("-labelled_at", "-pk")[:TRIAGE_SHOWN]),
    )
