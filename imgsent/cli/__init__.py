"""The ``imgsent`` command line: thin Typer commands over the library."""
