"""`orchestrator serve`: workflows behind an OpenAI-compatible endpoint and a runs API.

    from orchestrator.serve import ServeConfig, create_app, load_served
    app = create_app(ServeConfig(load_served(["graphs/quickstart.yaml"])))
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Built on Starlette and uvicorn (the `serve` extra). Every run goes through the SDK
(`Workflow.astream` / `astream_resume` / `ainspect`), so checkpoints, the run log, budgets and
leases behave exactly as they do for the CLI.
"""

from .app import create_app
from .config import ServeConfig, Served, load_served

__all__ = ["ServeConfig", "Served", "create_app", "load_served"]
