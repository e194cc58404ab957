"""Editor support: the committed JSON Schema matches the code, and shipped graphs point to it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from orchestrator import workflow_json_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "schema" / "workflow.schema.json"


def test_schema_file_is_current() -> None:
    # Regenerate with: orchestrator schema > schema/workflow.schema.json
    assert json.loads(SCHEMA_FILE.read_text()) == workflow_json_schema()


def test_every_shipped_graph_names_the_schema_and_satisfies_it() -> None:
    validator = jsonschema.Draft202012Validator(workflow_json_schema())
    graphs = sorted((REPO / "graphs").glob("*.yaml"))
    assert len(graphs) >= 2
    for path in graphs:
        text = path.read_text()
        first = text.splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/workflow.schema.json", path
        assert (path.parent / first.split("=", 1)[1]).resolve() == SCHEMA_FILE
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
        assert errors == [], (path.name, errors)
