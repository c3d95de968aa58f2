"""``airisk guard ...`` and ``airisk audit ...`` commands (thin: parse options, call the library)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from airisk.cli._common import group

from airisk.errors import ConfigError, InputNotFound

AUDIT_DB_HELP = "Audit database URL (default: $AIRISK_GUARD_AUDIT_DB, else $AIRISK_HOME/guard_audit.db)."

guard_app = group("Runtime guard: action gate, content guard, HTTP service.")
audit_app = group("The guard's tamper-evident audit log.")


def _print(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


@guard_app.command("check-action")
def check_action(tool: str = typer.Option(..., help="tool name"),
                 args: str = typer.Option("{}", "--args", help="tool arguments as a JSON object"),
                 policy: str = typer.Option("builtin:default", help="policy file or builtin:<name>"),
                 role: Optional[str] = typer.Option(None, help="role of the caller (policy roles: section)"),
                 principal: Optional[str] = typer.Option(None, help="principal (user/agent id) making the call"),
                 strict: bool = typer.Option(False, help="exit 1 on BLOCK, 3 on REVIEW")) -> None:
    """Decide one proposed tool call and print the decision."""
    from airisk.guard import Action, ActionGate

    try:
        arguments = json.loads(args)
    except ValueError as e:
        raise ConfigError(f"--args is not valid JSON: {e}") from None
    if not isinstance(arguments, dict):
        raise ConfigError("--args must be a JSON object")
    d = ActionGate.from_policy(policy).decide(Action(tool=tool, arguments=arguments, role=role, principal=principal))
    _print(d.to_dict())
    if strict and d.verdict != "ALLOW":
        raise typer.Exit(1 if d.verdict == "BLOCK" else 3)


@guard_app.command("check-content")
def check_content(prompt: str = typer.Option("", help="user prompt"),
                  response: Optional[str] = typer.Option(None, help="model response (checks the output stage)"),
                  policy: str = typer.Option("builtin:default", help="policy whose content: section applies")) -> None:
    """Classify a prompt (or prompt + response) with the offline models and print the decision."""
    from airisk.guard.content import ContentGuard, set_inference_threads
    from airisk.guard.policy import load_policy

    set_inference_threads(1)
    guard = ContentGuard(policy=load_policy(policy).content)
    d = guard.check_input(prompt) if response is None else guard.check_output(prompt, response)
    _print(d.to_dict())


@guard_app.command("validate-policy")
def validate_policy(path: str = typer.Argument(..., help="policy YAML file or builtin:<name>")) -> None:
    """Validate and compile a policy; errors name the line."""
    from airisk.guard import ActionGate
    from airisk.guard.content import ContentGuard

    gate = ActionGate.from_policy(path if path.startswith("builtin:") or path.endswith((".yaml", ".yml")) else Path(path))
    ContentGuard(scorer=object(), policy=gate.policy.content)  # validates the content: section
    p = gate.policy
    typer.echo(f"ok: policy '{p.name}': {len(p.tools)} tools, {len(p.roles)} roles, {len(p.principals)} principals")


@guard_app.command("hash-key")
def hash_key_cmd(key: str = typer.Argument(..., help="an API key to store in the service config")) -> None:
    """Print the SHA-256 to put in api_keys[].key_sha256 (the key itself is never stored)."""
    from airisk.guard.service import hash_key

    typer.echo(hash_key(key))


@guard_app.command("serve")
def serve(config: Optional[Path] = typer.Option(None, help="service config YAML"),
          policy: Optional[str] = typer.Option(None, help="override the config's policy"),
          upstream: Optional[str] = typer.Option(None, help="override the upstream base URL (…/v1)"),
          audit_db: Optional[str] = typer.Option(None, help="audit database URL"),
          host: str = typer.Option("127.0.0.1", help="interface to listen on"),
          port: int = typer.Option(8700, help="port to listen on"),
          insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth",
                                                help="disable API-key auth (local development only)")) -> None:
    """Run the guard HTTP service (FastAPI + uvicorn)."""
    import uvicorn

    from airisk.guard.service import ServiceConfig, create_app, load_service_config

    cfg = load_service_config(config) if config else ServiceConfig(require_auth=not insecure_no_auth)
    updates = {}
    if policy:
        updates["policy"] = policy
    if upstream:
        updates["upstream"] = {"base_url": upstream}
    if audit_db:
        updates["audit_url"] = audit_db
    if insecure_no_auth:
        updates["require_auth"] = False
        typer.secho("warning: authentication disabled (--insecure-no-auth)", err=True, fg=typer.colors.YELLOW)
    cfg = ServiceConfig.model_validate({**cfg.model_dump(), **updates})
    uvicorn.run(create_app(cfg), host=host, port=port, log_level="info")


@audit_app.command("verify")
def audit_verify(db: Optional[str] = typer.Option(None, "--db", help=AUDIT_DB_HELP),
                 expect_head: Optional[Path] = typer.Option(None, "--expect-head",
                                                            help="JSON file from `airisk audit head`: the log must still hold it")) -> None:
    """Verify the hash chain (HMAC with AIRISK_AUDIT_KEY[_FILE]); lists every edited, deleted or reordered
    record. Exit 1 if tampered; a log that does not exist is never created here."""
    from airisk.guard.audit import AuditLog, read_head

    head = read_head(expect_head) if expect_head else None
    rep = AuditLog(_existing_audit_db(db), create=False).verify(expect_head=head)
    for w in rep.warnings:
        typer.echo(f"warning: {w}")
    if rep.ok:
        keyed = "keyed (HMAC)" if rep.keyed else "UNKEYED: set AIRISK_AUDIT_KEY to protect it"
        typer.echo(f"ok: {rep.records} records, hash chain intact, {keyed}"
                   + (f", expected head seq={head['seq']} present" if head else ""))
        return
    for p in rep.problems:
        typer.echo(f"TAMPERED [{p['problem']}] {p['message']}")
    raise typer.Exit(1)


@audit_app.command("head")
def audit_head(db: Optional[str] = typer.Option(None, "--db", help=AUDIT_DB_HELP),
               out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the signed head here (else stdout)")) -> None:
    """Export the signed head (last seq + hash, HMAC-signed): keep it outside the database and pass it
    to `audit verify --expect-head` later."""
    from airisk.guard.audit import AuditLog

    text = json.dumps(AuditLog(_existing_audit_db(db), create=False).signed_head(), indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"signed head written to {out}")
    else:
        typer.echo(text)


@audit_app.command("show")
def audit_show(db: Optional[str] = typer.Option(None, "--db", help=AUDIT_DB_HELP),
               limit: int = typer.Option(20, min=0, max=100_000, help="records to print"),
               offset: int = typer.Option(0, min=0, help="records to skip (newest first)"),
               kind: Optional[str] = typer.Option(None, help="only records of this kind (action, content, ...)"),
               verdict: Optional[str] = typer.Option(None, help="only records with this verdict (ALLOW, BLOCK, ...)")) -> None:
    """Print audit records (JSON lines)."""
    from airisk.guard.audit import AuditLog

    for r in AuditLog(_existing_audit_db(db), create=False).query(limit=limit, offset=offset, kind=kind, verdict=verdict):
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")


def _existing_audit_db(db: Optional[str]) -> Optional[str]:
    """The audit URL to read; a SQLite file that does not exist is an error, not a new empty log
    (which would "verify" as intact)."""
    import os

    from sqlalchemy.engine import make_url

    from airisk.guard.audit import default_audit_url

    url = db or os.environ.get("AIRISK_GUARD_AUDIT_DB") or default_audit_url()
    try:
        u = make_url(url)
    except Exception:  # not a URL: let AuditLog report it
        return url
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:" \
            and not Path(u.database).expanduser().exists():
        raise InputNotFound(f"no audit database at {u.database} (check --db or AIRISK_GUARD_AUDIT_DB)")
    return url


def register(app: typer.Typer) -> None:
    from airisk.cli.approvals import approvals_app  # light: typer only

    guard_app.add_typer(approvals_app, name="approvals")
    app.add_typer(guard_app, name="guard")
    app.add_typer(audit_app, name="audit")
