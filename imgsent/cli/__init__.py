"""The ``imgsent`` command line: thin Typer commands over the library."""

import time

STARTED = time.perf_counter()
"""When the command line was imported: the start of a command's wall time (only the interpreter's own start-up precedes it)."""
