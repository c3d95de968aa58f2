"""``airisk guard approvals list|approve|deny``: a thin adapter over ``ApprovalsClient`` (HTTP), so
that role checks and audit records stay in the service."""

from __future__ import annotations

import json
from typing import Optional

import typer

approvals_app = typer.Typer(help="Human approval of REVIEW decisions (talks to a running guard service).",
                            no_args_is_help=True)
URL = typer.Option("http://127.0.0.1:8700", "--url", envvar="AIRISK_GUARD_URL", help="guard service base URL")
KEY = typer.Option(None, "--key", envvar="AIRISK_GUARD_KEY", help="an API key with the approver role (or admin)")


def _client(url: str, key: Optional[str]):
    from airisk.guard.approvals import ApprovalsClient

    return ApprovalsClient(url, key)


@approvals_app.command("list")
def list_cmd(status: str = typer.Option("pending", help="pending | approved | denied | expired | all"),
             limit: int = typer.Option(100, min=1, max=1000, help="at most this many approvals"), url: str = URL, key: Optional[str] = KEY) -> None:
    """List approvals (pending by default), one JSON object per line."""
    if status not in ("pending", "approved", "denied", "expired", "all"):
        raise typer.BadParameter("--status must be pending, approved, denied, expired or all")
    for a in _client(url, key).list(None if status == "all" else status, limit):
        typer.echo(json.dumps(a, ensure_ascii=False))


@approvals_app.command("approve")
def approve_cmd(approval_id: str = typer.Argument(..., help="the approval id"),
                note: Optional[str] = typer.Option(None, help="why (stored and audited)"),
                url: str = URL, key: Optional[str] = KEY) -> None:
    """Approve a pending approval: the same action may then run once."""
    a = _client(url, key).decide(approval_id, True, note)
    typer.echo(f"approved {a['id']} ({a['tool']} for {a['principal']}); audit {a['audit_id']}")


@approvals_app.command("deny")
def deny_cmd(approval_id: str = typer.Argument(..., help="the approval id"),
             note: Optional[str] = typer.Option(None, help="why (stored and audited)"),
             url: str = URL, key: Optional[str] = KEY) -> None:
    """Deny a pending approval."""
    a = _client(url, key).decide(approval_id, False, note)
    typer.echo(f"denied {a['id']} ({a['tool']} for {a['principal']}); audit {a['audit_id']}")
