"""GraphQL errors as Linear sends them, filters, comparators and connections (pagination)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from graphql import (
    GraphQLError,
)

from contexten.sandbox.linear.state import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# ----------------------------------------------------------------------------- errors


def _error(
    message: str,
    *,
    type_: str = "invalid input",
    code: str = "INPUT_ERROR",
    status: int = 400,
    user_message: str | None = None,
) -> GraphQLError:
    return GraphQLError(
        message,
        extensions={
            "type": type_,
            "code": code,
            "statusCode": status,
            "userError": True,
            "userPresentableMessage": user_message or message,
        },
    )


def _not_found(entity: str) -> GraphQLError:
    return _error(
        f"Entity not found: {entity}",
        user_message=f"Could not find referenced {entity}.",
    )


def _error_body(errors: Sequence[GraphQLError]) -> dict[str, Any]:
    return {"errors": [e.formatted for e in errors], "data": None}


# ----------------------------------------------------------------------------- filters


def _fold(value: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)
    ).casefold()


_STRING_OPS: dict[str, Callable[[str, Any], bool]] = {
    "eq": lambda v, a: v == a,
    "neq": lambda v, a: v != a,
    "in": lambda v, a: v in a,
    "nin": lambda v, a: v not in a,
    "eqIgnoreCase": lambda v, a: v.casefold() == a.casefold(),
    "neqIgnoreCase": lambda v, a: v.casefold() != a.casefold(),
    "contains": lambda v, a: a in v,
    "notContains": lambda v, a: a not in v,
    "containsIgnoreCase": lambda v, a: a.casefold() in v.casefold(),
    "notContainsIgnoreCase": lambda v, a: a.casefold() not in v.casefold(),
    "containsIgnoreCaseAndAccent": lambda v, a: _fold(a) in _fold(v),
    "startsWith": lambda v, a: v.startswith(a),
    "startsWithIgnoreCase": lambda v, a: v.casefold().startswith(a.casefold()),
    "notStartsWith": lambda v, a: not v.startswith(a),
    "endsWith": lambda v, a: v.endswith(a),
    "notEndsWith": lambda v, a: not v.endswith(a),
}
_NUMBER_OPS: dict[str, Callable[[float, Any], bool]] = {
    "eq": lambda v, a: v == a,
    "neq": lambda v, a: v != a,
    "in": lambda v, a: v in a,
    "nin": lambda v, a: v not in a,
    "lt": lambda v, a: v < a,
    "lte": lambda v, a: v <= a,
    "gt": lambda v, a: v > a,
    "gte": lambda v, a: v >= a,
}
# Negative comparators hold for a null value (Linear: `neq` matches issues without one).
_NULL_PASSES = {"neq", "nin", "neqIgnoreCase", "notContains", "notContainsIgnoreCase",
                "notStartsWith", "notEndsWith"}  # fmt: skip


def _compare(
    value: Any, comparator: Mapping[str, Any], ops: Mapping[str, Callable[..., bool]]
) -> bool:
    for op, arg in comparator.items():
        if op == "null":
            if arg is not None and (value is None) != bool(arg):
                return False
            continue
        if arg is None:
            continue
        check = ops.get(op)
        if check is None:
            raise _error(f"Comparator {op} is not supported by the contexten sandbox")
        if value is None:
            if op in _NULL_PASSES:
                continue
            return False
        if not check(value, arg):
            return False
    return True


def _match_string(value: str | None, comparator: Mapping[str, Any]) -> bool:
    return _compare(value, comparator, _STRING_OPS)


def _match_number(value: float | None, comparator: Mapping[str, Any]) -> bool:
    return _compare(value, comparator, _NUMBER_OPS)


def _match_date(value: float | None, comparator: Mapping[str, Any]) -> bool:
    """Dates compare as ISO-8601 instants; durations (e.g. -P2W) are not supported."""

    def instant(text: Any) -> float:
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise _error(f"Invalid date {text!r}: the sandbox accepts ISO-8601 dates") from None

    converted: dict[str, Any] = {}
    for op, arg in comparator.items():
        if op == "null" or arg is None:
            converted[op] = arg
        elif isinstance(arg, list):
            converted[op] = [instant(a) for a in arg]
        else:
            converted[op] = instant(arg)
    return _match_number(value, converted)


def _combine(
    item: Any, spec: Mapping[str, Any], match: Callable[[Any, Mapping[str, Any]], bool]
) -> bool:
    """Shared `and`/`or` handling for every filter type."""
    for sub in spec.get("and") or ():
        if not match(item, sub):
            return False
    ors = spec.get("or")
    return not ors or any(match(item, sub) for sub in ors)


def _unsupported(kind: str, spec: Mapping[str, Any], supported: set[str]) -> None:
    extra = [k for k, v in spec.items() if v is not None and k not in supported]
    if extra:
        raise _error(f"{kind}.{extra[0]} is not supported by the contexten sandbox")


# ----------------------------------------------------------------------------- connections


def _connection(
    items: Sequence[Any],
    args: Mapping[str, Any],
    node: Callable[[Any], dict[str, Any]],
    key: Callable[[Any], str],
) -> dict[str, Any]:
    """Relay-style connection with Linear's defaults (first 50, cursors = ids)."""
    first, last = args.get("first"), args.get("last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise _error(f"Argument {name} must be between 0 and {MAX_PAGE_SIZE}")
    ordered = list(items)
    keys = [key(i) for i in ordered]
    start, end = 0, len(ordered)
    if args.get("after") in keys:
        start = keys.index(args["after"]) + 1
    if args.get("before") in keys:
        end = keys.index(args["before"])
    window = ordered[start:end]
    if first is None and last is None:
        first = DEFAULT_PAGE_SIZE
    has_next = has_prev = False
    if first is not None and len(window) > first:
        window, has_next = window[:first], True
    if last is not None and len(window) > last:
        window, has_prev = window[len(window) - last :], True
    has_prev = has_prev or start > 0
    has_next = has_next or end < len(ordered)
    nodes = [node(i) for i in window]
    cursors = [key(i) for i in window]
    return {
        "nodes": nodes,
        "edges": [{"node": n, "cursor": c} for n, c in zip(nodes, cursors, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_prev,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _ordered(items: Iterable[Any], args: Mapping[str, Any]) -> list[Any]:
    """Linear orders by createdAt (default) or updatedAt, newest first."""
    by = args.get("orderBy") or "createdAt"
    attr = "updated_at" if by == "updatedAt" else "created_at"
    return sorted(items, key=lambda i: getattr(i, attr, 0.0), reverse=True)


def _archived(item: Any, args: Mapping[str, Any]) -> bool:
    return getattr(item, "archived_at", None) is not None and not args.get("includeArchived")
