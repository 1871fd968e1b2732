"""The ``fmrikit`` command line: thin Typer commands over library functions."""
