"""``featurestore access ...`` (API keys, explaining decisions) and ``featurestore audit``."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.table import Table

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import ERROR
from featurestore.cli.online import parse_timestamp


def register(cli: click.Group) -> None:
    """Attach ``access`` and ``audit`` to ``cli``."""
    cli.add_command(access)
    cli.add_command(audit)


@click.group()
def access() -> None:
    """Access control: API keys and which policy decides what."""


@access.group()
def keys() -> None:
    """Create, list and revoke API keys (needs admin once policies exist)."""


@keys.command("create")
@click.argument("principal")
@click.option("--role", "roles", multiple=True, help="A role of the principal (repeat).")
@click.option("--service-account", is_flag=True, help="The principal is a service, not a person.")
@click.option("--description", default="", help="What the key is for.")
@click.pass_obj
def keys_create(
    state: CliContext,
    principal: str,
    roles: tuple[str, ...],
    service_account: bool,
    description: str,
) -> None:
    """Create an API key for PRINCIPAL; the token is printed once and never stored."""
    token, info = state.store.create_key(
        principal,
        roles=roles,
        kind="service_account" if service_account else "user",
        description=description,
    )
    click.echo(token)
    click.echo(
        f"key {info.prefix}… for {info.kind} {info.principal!r} (roles {list(info.roles)}): "
        "keep the token; send it as 'Authorization: Bearer <token>' or set FEATURESTORE_TOKEN",
        err=True,
    )


@keys.command("list")
@click.pass_obj
def keys_list(state: CliContext) -> None:
    """List the project's keys (prefix, principal, roles, state)."""
    table = Table("key", "principal", "kind", "roles", "created", "revoked", "description")
    for info in state.store.list_keys():
        table.add_row(
            info.prefix,
            info.principal,
            info.kind,
            ", ".join(info.roles),
            info.created_at.isoformat(timespec="seconds"),
            "" if info.revoked_at is None else info.revoked_at.isoformat(timespec="seconds"),
            info.description,
        )
    state.console.print(table)


@keys.command("revoke")
@click.argument("prefix")
@click.pass_obj
def keys_revoke(state: CliContext, prefix: str) -> None:
    """Revoke the key whose listed prefix starts with PREFIX; it is refused at once."""
    info = state.store.revoke_key(prefix)
    click.echo(f"revoked key {info.prefix}… of {info.principal!r}")


@access.command("check")
@click.argument("principal")
@click.argument("action")
@click.argument("resource")
@click.pass_obj
def check(state: CliContext, principal: str, action: str, resource: str) -> None:
    """Explain whether PRINCIPAL may do ACTION on RESOURCE, and which policy decided.

    RESOURCE is project, entity:NAME, feature_view:NAME, feature:VIEW:FEATURE or
    feature_service:NAME. Exit code 0 when allowed, 1 when denied.
    """
    decisions = state.store.check_access(principal, action, resource)
    for decision in decisions:
        verdict = "ALLOW" if decision.allowed else "DENY "
        click.echo(f"{verdict} {action} {decision.target.label}: {decision.reason}")
    if not all(d.allowed for d in decisions):
        raise SystemExit(ERROR)


@click.command()
@click.option("--since", callback=parse_timestamp, help="Only records at or after (ISO-8601).")
@click.option("--principal", help="Only this principal's records.")
@click.option("--action", help="Only this action (apply, materialize, push, read_online, ...).")
@click.option("--limit", type=click.IntRange(min=1), help="The newest N records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def audit(
    state: CliContext,
    since: datetime | None,
    principal: str | None,
    action: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Show the audit log: who did what to which resource, when, and the outcome."""
    records = state.store.audit_log(since=since, principal=principal, action=action, limit=limit)
    if as_json:
        for r in records:
            click.echo(
                json.dumps(
                    {
                        "at": r.at.isoformat(),
                        "principal": r.principal,
                        "action": r.action,
                        "resource": r.resource,
                        "outcome": r.outcome,
                        "count": r.count,
                        "detail": r.detail,
                    },
                    sort_keys=True,
                )
            )
        return
    table = Table("at", "principal", "action", "resource", "outcome", "count", "detail")
    for r in records:
        table.add_row(
            r.at.isoformat(timespec="seconds"),
            r.principal or "(anonymous)",
            r.action,
            r.resource,
            r.outcome,
            str(r.count),
            json.dumps(r.detail, sort_keys=True),
        )
    state.console.print(table)
