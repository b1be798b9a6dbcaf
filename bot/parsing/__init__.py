"""The zh/en phrase parser: a chat message becomes a generation request (data in phrases.yaml), and the
decision made before any job: request, command, chatter or confirm (data in intake.yaml)."""

from .kind import Decision, Kind, decide, warm
from .parser import ParsedRequest, parse, parse_with
from .tables import Tables, TablesError, default_tables, load_tables

__all__ = [
    "Decision",
    "Kind",
    "ParsedRequest",
    "Tables",
    "TablesError",
    "decide",
    "default_tables",
    "load_tables",
    "parse",
    "parse_with",
    "warm",
]
