"""The zh/en phrase parser: a chat message becomes a generation request (data in phrases.yaml)."""

from .parser import ParsedRequest, parse, parse_with
from .tables import Tables, TablesError, default_tables, load_tables

__all__ = ["ParsedRequest", "Tables", "TablesError", "default_tables", "load_tables", "parse", "parse_with"]
