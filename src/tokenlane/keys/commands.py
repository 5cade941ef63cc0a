"""`tokenlane keys create|list|show|update|revoke|rotate` and `tokenlane spend`: the admin API
(`/admin/`, master keys only) from the command line. Nothing here touches the store: a running
gateway owns it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx
import orjson

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="manage a running gateway's virtual keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")

    create = _with_gateway(actions.add_parser("create", help="create a key; prints its secret"))
    _spec_options(create)
    create.set_defaults(run=_create)

    update = _with_gateway(actions.add_parser("update", help="change a key's limits"))
    update.add_argument("key_id", help="the key's id (tokenlane keys list)")
    _spec_options(update)
    update.set_defaults(run=_update)

    listing = _with_gateway(actions.add_parser("list", help="every key (prefixes, never secrets)"))
    listing.set_defaults(run=_list)
    for name, helptext in (("show", "one key and its spend"),
                           ("revoke", "refuse the key from its next request on"),
                           ("rotate", "a new secret for the key; the old one stops working")):
        action = _with_gateway(actions.add_parser(name, help=helptext))
        action.add_argument("key_id", help="the key's id (tokenlane keys list)")
        action.set_defaults(run=_by_id, action=name)

    spend = _with_gateway(sub.add_parser("spend", help="what the ledger says was spent"))
    spend.add_argument("--key-id", help="only this key's spend")
    spend.add_argument("--model", help="only this public model's spend")
    spend.add_argument("--deployment", help="only this deployment's spend (provider/model)")
    spend.add_argument("--period", choices=["day", "month", "total"],
                       help="the current UTC day or month, or everything")
    spend.add_argument("--group-by", choices=["key", "model", "deployment", "day"],
                       help="one row per key, model, deployment or UTC day")
    spend.set_defaults(run=_spend)


def _with_gateway(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--url", default="http://127.0.0.1:8000",
                        help="the gateway (default: %(default)s)")
    parser.add_argument("--key", default=_master_key(),
                        help="a master key (default: $TOKENLANE_ADMIN_KEY, else the first of "
                             "$TOKENLANE_MASTER_KEYS)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    return parser


def _master_key() -> str | None:
    admin = os.environ.get("TOKENLANE_ADMIN_KEY")
    if admin:
        return admin
    keys = [k.strip() for k in os.environ.get("TOKENLANE_MASTER_KEYS", "").split(",")]
    return next((k for k in keys if k), None)


def _spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="a label for people (not unique, not secret)")
    parser.add_argument("--model", action="append", dest="models",
                        help="a model the key may use (repeat for several; default: all)")
    parser.add_argument("--deployment", action="append", dest="deployments",
                        help="a deployment the key may use (repeat; default: all)")
    for period in ("day", "month", "total"):
        parser.add_argument(f"--budget-{period}", type=float, metavar="USD",
                            help=f"spend limit per UTC {period}" if period != "total"
                            else "spend limit over the key's life")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute (prompt + output)")
    parser.add_argument("--max-attempts", type=int,
                        help="cap on attempts per request (fallbacks, retries)")
    parser.add_argument("--max-deadline-s", type=float, help="cap on a request's deadline")
    parser.add_argument("--no-hedge", action="store_true", help="never hedge this key's requests")
    parser.add_argument("--expires-at", type=float, metavar="UNIX_SECONDS",
                        help="refused from then on")
    parser.add_argument("--meta", action="append", default=[], metavar="NAME=VALUE",
                        help="metadata such as team=search (repeat)")
    parser.add_argument("--scope", action="append", dest="scopes", choices=["dashboard"],
                        help="what else the key may do: dashboard (see /dashboard, which "
                             "shows every tenant's traffic)")


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    """The fields given on the command line, as the admin API takes them."""
    spec: dict[str, Any] = {k: v for k in ("name", "models", "deployments", "rpm", "tpm",
                                           "scopes")
                            if (v := getattr(args, k)) is not None}
    budgets = {p: v for p in ("day", "month", "total")
               if (v := getattr(args, f"budget_{p}")) is not None}
    if budgets:
        spec["budget_usd"] = budgets
    caps = {k: v for k, v in (("max_attempts", args.max_attempts),
                              ("deadline_s", args.max_deadline_s),
                              ("hedge", False if args.no_hedge else None)) if v is not None}
    if caps:
        spec["max_options"] = caps
    if args.expires_at is not None:
        spec["expires_at"] = args.expires_at
    if args.meta:
        spec["metadata"] = dict(item.partition("=")[::2] for item in args.meta)
    return spec


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    """The admin API's answer, or None after printing why there is none."""
    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        response = httpx.request(method, f"{args.url.rstrip('/')}/admin{path}", headers=headers,
                                 timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        print(f"tokenlane: cannot reach {args.url}: {exc}", file=sys.stderr)
        return None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        print(f"tokenlane: HTTP {response.status_code}: {message}", file=sys.stderr)
        return None
    return response.json()


def _show(args: argparse.Namespace, body: Any, text: str) -> int:
    if body is None:
        return 1
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if args.json else text)
    return 0


def _create(args: argparse.Namespace) -> int:
    body = _call(args, "POST", "/keys", json=_spec(args))
    return _show(args, body, body and (
        f"created key {body['id']}\n"
        f"secret (shown once, store it now): {body['secret']}"))


def _update(args: argparse.Namespace) -> int:
    body = _call(args, "PATCH", f"/keys/{args.key_id}", json=_spec(args))
    return _show(args, body, body and _key_line(body))


def _by_id(args: argparse.Namespace) -> int:
    if args.action == "show":
        body = _call(args, "GET", f"/keys/{args.key_id}")
    else:
        body = _call(args, "POST", f"/keys/{args.key_id}/{args.action}")
    text = body and _key_line(body)
    if body and body.get("secret"):
        text += f"\nnew secret (shown once, store it now): {body['secret']}"
    return _show(args, body, text)


def _list(args: argparse.Namespace) -> int:
    body = _call(args, "GET", "/keys")
    return _show(args, body, body and "\n".join(
        [_key_line(k) for k in body["data"]] or ["no keys"]))


def _key_line(key: dict[str, Any]) -> str:
    spent = key["usage"]["spent_usd"]
    budgets = ", ".join(f"{p} ${v:g}" for p, v in key["budget_usd"].items() if v is not None)
    state = "revoked" if key["revoked_at"] else "active"
    return (f"{key['id']}  {key['prefix']}  {key['name'] or '-'}  {state}  "
            f"models: {','.join(key['models'] or ['*'])}  budget: {budgets or 'none'}  "
            f"spent today ${spent['day']:.6f}, this month ${spent['month']:.6f}")


def _spend(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("key_id", args.key_id), ("model", args.model),
                                ("deployment", args.deployment), ("period", args.period),
                                ("group_by", args.group_by)) if v is not None}
    body = _call(args, "GET", "/spend", params=params)
    if body is None or args.json:
        return _show(args, body, "")
    rows = [f"total  {_totals(body['total'])}"]
    group = body["group_by"]
    rows += [f"{row[group] or '-'}  {_totals(row)}" for row in body["data"]] if group else []
    print("\n".join(rows))
    return 0


def _totals(row: dict[str, Any]) -> str:
    return (f"${row['cost_usd']:.6f}  {row['requests']} requests  "
            f"{row['prompt_tokens']} in ({row['cached_tokens']} cached)  "
            f"{row['completion_tokens']} out ({row['reasoning_tokens']} reasoning)")
