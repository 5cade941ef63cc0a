"""Virtual keys, budgets, rate limits and the spend ledger (see README: "Keys, budgets and
spend"). The gateway builds one `KeyService` when `keys.enabled`; every surface admits and
settles its requests through `service.gate`."""

from .admission import NO_TICKET, OPEN_GATE, Gate, OpenGate, Ticket, request_id_of
from .errors import BudgetExceeded, PermissionDenied, RateLimitExceeded
from .records import Budgets, KeySpec, MaxOptions, VirtualKey
from .service import KeyNotFound, KeyService
from .store import Admission, KeyStore, LedgerRow, Limiter, SpendQuery

__all__ = [
    "NO_TICKET",
    "OPEN_GATE",
    "Admission",
    "BudgetExceeded",
    "Budgets",
    "Gate",
    "KeyNotFound",
    "KeyService",
    "KeySpec",
    "KeyStore",
    "LedgerRow",
    "Limiter",
    "MaxOptions",
    "OpenGate",
    "PermissionDenied",
    "RateLimitExceeded",
    "SpendQuery",
    "Ticket",
    "VirtualKey",
    "request_id_of",
]
