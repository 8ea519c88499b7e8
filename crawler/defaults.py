"""Defaults that command-line options show, kept apart from the modules that use them, so
that defining the commands does not import the HTTP client (a query never needs it)."""

DEFAULT_API_VERSION = "2026-01"
DEFAULT_CONCURRENCY = 16
FAULT_KINDS = ("429", "503", "500", "reset", "slow", "truncated")  # what the sandbox can inject
