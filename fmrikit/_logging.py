"""The package logger. The library logs; only the CLI attaches handlers."""

import logging

logger = logging.getLogger("fmrikit")
logger.addHandler(logging.NullHandler())
