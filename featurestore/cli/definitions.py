"""Commands about definitions: apply, plan, history, list, describe, registry-dump."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.table import Table

from featurestore.cli.app import CliContext
from featurestore.cli.exit_codes import FINDING
from featurestore.definitions.base import Definition
from featurestore.errors import ObjectNotFoundError, did_you_mean
from featurestore.registry import Plan
from featurestore.store import FeatureStore

_KINDS = {
    "entities": "entity",
    "feature-views": "feature_view",
    "feature-services": "feature_service",
}
_KIND_CHOICE = click.Choice(["entity", "feature_view", "feature_service"])


def register(cli: click.Group) -> None:
    """Attach the definition commands to ``cli``."""
    for command in (apply, plan, history, list_objects, describe, registry_dump):
        cli.add_command(command)


@click.command()
@click.pass_obj
def apply(state: CliContext) -> None:
    """Register the repository's definitions; objects no longer in it are deleted."""
    if _print_plan(state, state.store.apply()):
        state.console.print(f"Applied to project {state.store.project!r}.")


@click.command()
@click.option(
    "--fail-on-breaking",
    is_flag=True,
    help=f"Exit with code {FINDING} when the plan has breaking changes (for CI).",
)
@click.pass_obj
def plan(state: CliContext, fail_on_breaking: bool) -> None:
    """Show what `apply` would change, per object, with breaking changes flagged."""
    result = state.store.plan()
    if _print_plan(state, result) and result.breaking:
        state.console.print(f"{len(result.breaking)} breaking change(s).")
        if fail_on_breaking:
            # A finding about the definitions, not a failed run: the same code as validate/drift.
            sys.exit(FINDING)


def _print_plan(state: CliContext, result: Plan) -> bool:
    """Print a plan; returns whether it changes anything."""
    if not result.has_changes:
        state.console.print("No changes: the registry already matches the repository.")
        return False
    state.console.print(result.render(), markup=False)
    return True


@click.command()
@click.argument("name")
@click.option("--kind", type=_KIND_CHOICE, default=None, help="Only objects of this kind.")
@click.pass_obj
def history(state: CliContext, name: str, kind: str | None) -> None:
    """List every version and metadata change of NAME, oldest first."""
    entries = state.store.history(name, kind)
    if not entries:
        raise _no_object(state.store, name)
    table = Table("kind", "version", "change", "hash", "applied at (UTC)", "details")
    for entry in entries:
        table.add_row(
            entry.kind,
            f"v{entry.version}",
            entry.change,
            entry.content_hash[:12],
            entry.applied_at.strftime("%Y-%m-%d %H:%M:%S"),
            "; ".join(entry.details),
        )
    state.console.print(table)


@click.command(name="list")
@click.argument(
    "what", type=click.Choice(["entities", "feature-views", "feature-services", "features"])
)
@click.pass_obj
def list_objects(state: CliContext, what: str) -> None:
    """List registered entities, feature views, feature services or features."""
    store = state.store
    if what == "features":
        table = Table("feature", "type", "view", "version", "tags")
        for view in store.list_feature_views():
            version = store.registry.current_version(store.project, view.kind, view.name)
            for feature in view.features:
                tags = ", ".join(f"{k}={v}" for k, v in sorted(feature.tags.items()))
                table.add_row(
                    f"{view.name}:{feature.name}",
                    feature.dtype.name,
                    view.name,
                    f"v{version}",
                    tags,
                )
        state.console.print(table)
        return
    kind = _KINDS[what]
    # Through the facade, so the list leaves out what the principal may not describe.
    listings: dict[str, Callable[[], Sequence[Definition]]] = {
        "entity": store.list_entities,
        "feature_view": store.list_feature_views,
        "feature_service": store.list_feature_services,
    }
    objects = listings[kind]()
    table = Table("name", "version", "hash", "owner", "description")
    for obj in objects:
        version = store.registry.current_version(store.project, kind, obj.name)
        table.add_row(obj.name, f"v{version}", obj.content_hash[:12], obj.owner, obj.description)
    state.console.print(table)


@click.command()
@click.argument("name")
@click.option("--kind", type=_KIND_CHOICE, default=None, help="Which kind, when names are shared.")
@click.option(
    "--version", "version", type=click.IntRange(min=1), default=None, help="A past version."
)
@click.pass_obj
def describe(state: CliContext, name: str, kind: str | None, version: int | None) -> None:
    """Print the definition of NAME (current, or --version N) as JSON."""
    store = state.store
    kinds = [kind] if kind else store.registry.kinds_named(store.project, name)
    if not kinds:
        raise _no_object(store, name)
    if len(kinds) > 1:
        named = " and ".join(k.replace("_", " ") for k in kinds)
        raise click.UsageError(
            f"{name!r} names more than one object ({named}); pick one with --kind"
        )
    obj = store.get_definition(kinds[0], name, version)
    click.echo(json.dumps(_document(store, obj, version), indent=2, sort_keys=True))


@click.command(name="registry-dump")
@click.pass_obj
def registry_dump(state: CliContext) -> None:
    """Print every registered object you may describe as JSON (like `feast registry-dump`)."""
    store = state.store
    dump = {
        "project": store.project,
        "entities": [_document(store, o) for o in store.list_entities()],
        "feature_views": [_document(store, o) for o in store.list_feature_views()],
        "feature_services": [_document(store, o) for o in store.list_feature_services()],
    }
    click.echo(json.dumps(dump, indent=2, sort_keys=True))


def _document(store: FeatureStore, obj: Definition, version: int | None = None) -> dict[str, Any]:
    """``obj``'s definition with its version (the current one unless given) and content hash."""
    current = version or store.registry.current_version(store.project, obj.kind, obj.name)
    return {**obj.to_dict(), "version": current, "content_hash": obj.content_hash}


def _no_object(store: FeatureStore, name: str) -> ObjectNotFoundError:
    """Not found, with the closest names among the objects the caller may describe."""
    known = [
        o.name
        for listed in (store.list_entities, store.list_feature_views, store.list_feature_services)
        for o in listed()
    ]
    return ObjectNotFoundError(
        f"no object named {name!r} in project {store.project!r}{did_you_mean(name, known)}"
    )
