"""The ``fmrikit`` command line: thin Typer commands over library functions."""

from fmrikit.devices import limit_threads

limit_threads()  # first: numpy and torch size their thread pools when they load
