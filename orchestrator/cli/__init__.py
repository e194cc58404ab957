"""The `orchestrator` command: parse, call the SDK, print. Errors become one line and an exit code.

Exit codes: 0 the run completed; 1 it did not (failed, budget_exceeded); 2 bad spec, usage or
state directory; 130 stopped by Ctrl-C and 143 by SIGTERM (the run can be resumed).
"""

from .main import main

__all__ = ["main"]
