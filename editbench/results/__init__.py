"""Results: the cell result schema, provenance, the store (write, read, export, merge).

A result file alone says what produced it (package and library versions, git commit and dirty flag,
checkpoint hashes, the reader's accuracy). Files are written atomically, so no result already written
is ever lost or half-written.
"""

from .provenance import provenance
from .schema import READABLE_SCHEMAS, SCHEMA_VERSION, CellResult, ResultsError, upgrade
from .store import export, load_results, read_records, read_sources, write_result, write_strip

__all__ = ["READABLE_SCHEMAS", "SCHEMA_VERSION", "CellResult", "ResultsError", "export", "load_results", "provenance",
           "read_records", "read_sources", "upgrade", "write_result", "write_strip"]
