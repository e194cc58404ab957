"""The workflow YAML contract: loading, interpolation, validation, errors, secrets, schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator import specload
from orchestrator.errors import SpecError, redact
from orchestrator.spec import Limits, ModelProfile, Price, Roles, WorkflowSpec
from orchestrator.specload import load_workflow, parse_workflow, workflow_json_schema

DATA = Path(__file__).parent / "data"
VALID = DATA / "valid.yaml"
KEY = "sk-test-0123456789abcdef"
ENV = {"OPENAI_API_KEY": KEY}


def parse(text: str, environ: dict[str, str] | None = None) -> WorkflowSpec:
    return parse_workflow(textwrap.dedent(text), file="wf.yaml", environ=ENV | (environ or {}))


def error(text: str, environ: dict[str, str] | None = None) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, environ)
    return info.value


MINIMAL = """\
name: t
models:
  thinker:
    model: o4-mini
    reasoning: true
  writer:
    model: gpt-4o-mini
"""


# --- the DESIGN.md example ---------------------------------------------------------------------


def test_design_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    spec = load_workflow(VALID)
    assert spec.name == "research-brief"
    assert spec.description == "..."
    assert spec.source == str(VALID)
    thinker = spec.models["thinker"]
    assert thinker.model == "o4-mini"
    assert thinker.base_url == "https://api.openai.com/v1"
    assert thinker.api_key is not None and thinker.api_key.get_secret_value() == KEY
    assert thinker.reasoning and thinker.reasoning_effort == "medium"
    assert thinker.max_output_tokens == 25000
    assert thinker.price == Price(input=1.10, cached_input=0.275, output=4.40)
    writer = spec.models["writer"]
    assert writer.price.cached_input == 0.15  # defaults to input
    assert writer.provider == "openai" and writer.base_url is None and writer.api_key is None
    assert (writer.effective_timeout_s, writer.retries, writer.temperature) == (120, 4, None)
    assert thinker.effective_timeout_s == 600  # reasoning models think for minutes
    assert spec.profile_for("plan") == ("thinker", thinker)
    assert spec.profile_for("synthesize") == ("writer", writer)
    assert spec.limits == Limits(budget_usd=0.5)


def test_models_are_frozen() -> None:
    spec = parse(MINIMAL)
    with pytest.raises(ValueError):
        spec.__setattr__("name", "other")


# --- 1. safe YAML --------------------------------------------------------------------------------


def test_python_tags_are_refused_with_the_line_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    err = error(f"""\
        name: t
        description: !!python/object/apply:os.system ["touch {marker}"]
        models: {{w: {{model: m}}}}
        """)
    assert not marker.exists()
    assert err.line == 2 and err.path == ("description",)
    assert "unsupported YAML tag '!!python/object/apply:os.system'" in str(err)
    assert str(err).startswith("wf.yaml:2: description: ")


def test_yaml_syntax_error_has_the_line() -> None:
    err = error("name: t\nmodels:\n  w:\n    model: [unclosed\n  x: 1\n")
    assert err.line is not None and err.line >= 4
    assert str(err).startswith(f"wf.yaml:{err.line}: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_is_an_error(text: str) -> None:
    assert "empty" in str(error(text))


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "a list"), ("hello\n", "'hello'")])
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    err = error(text)
    assert err.line == 1 and f"must be a mapping (name:, models:, ...), got {got}" in str(err)


def test_duplicate_keys_are_errors() -> None:
    err = error("name: t\nmodels: {w: {model: m}}\nname: u\n")
    assert (err.line, err.path) == (3, ("name",))
    assert "duplicate key 'name' (first at line 1)" in str(err)


def test_anchors_and_merge_keys_work() -> None:
    spec = parse("""\
        name: t
        models:
          a: &base {model: m, retries: 1, timeout_s: 5}
          b: {<<: *base, retries: 2}
        """)
    assert spec.models["b"].retries == 2 and spec.models["b"].timeout_s == 5


def test_recursive_alias_is_an_error() -> None:
    assert "too deeply" in str(error("name: t\nmodels: &m {w: *m}\n"))


def test_dates_and_yes_keys_stay_text() -> None:
    spec = parse(MINIMAL + "description: 2024-01-02\n")
    assert spec.description == "2024-01-02"
    assert "unknown key 'yes'" in str(error(MINIMAL + "yes: 1\n"))


def test_comment_header_is_fine() -> None:
    header = "# yaml-language-server: $schema=./workflow.schema.json\n"
    assert parse(header + MINIMAL).name == "t"


# --- 2. ${VAR} interpolation -------------------------------------------------------------------


def test_interpolation_set_default_and_escape() -> None:
    spec = parse(
        """\
        name: ${NAME}-x
        description: "$${LITERAL} and ${MISSING:-fallback} and ${EMPTY:-was empty} $$ $HOME"
        models:
          w:
            model: ${MODEL:-gpt-4o-mini}
            base_url: ${OPENAI_BASE_URL:-https://api.openai.com/v1}
        """,
        {"NAME": "brief", "EMPTY": "", "OPENAI_BASE_URL": "http://localhost:8000/v1"},
    )
    assert spec.name == "brief-x"
    assert spec.description == "${LITERAL} and fallback and was empty $$ $HOME"
    assert spec.models["w"].model == "gpt-4o-mini"
    assert spec.models["w"].base_url == "http://localhost:8000/v1"


def test_interpolated_numbers_and_booleans_are_coerced() -> None:
    spec = parse(
        """\
        name: t
        models:
          w: {model: m, max_output_tokens: "${MAXTOK:-100}", reasoning: "${R}"}
        limits: {budget_usd: "${BUDGET}"}
        """,
        {"R": "true", "BUDGET": "0.25"},
    )
    assert spec.models["w"].max_output_tokens == 100 and spec.models["w"].reasoning is True
    assert spec.limits.budget_usd == 0.25
    unquoted = parse("name: t\nmodels:\n  w:\n    model: m\n    max_output_tokens: ${N:-100}\n")
    assert unquoted.models["w"].max_output_tokens == 100


def test_unquoted_reference_in_flow_mapping_gets_a_hint() -> None:
    err = error("name: t\nmodels: {w: {model: m, max_output_tokens: ${MAXTOK:-100}}}\n")
    assert err.line == 2 and "quote values holding ${...} inside {...} or [...]" in str(err)


def test_unset_variable_names_var_path_and_line() -> None:
    text = MINIMAL.replace("    reasoning: true\n", "    reasoning: true\n    api_key: ${MY_KEY}\n")
    err = error(text)
    assert (err.path, err.line) == (("models", "thinker", "api_key"), 6)
    assert str(err) == (
        "wf.yaml:6: models.thinker.api_key: environment variable MY_KEY is not set; "
        "set it or write ${MY_KEY:-default}"
    )


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEC_TEST_NAME", "from-env")
    assert parse_workflow("name: ${SPEC_TEST_NAME}\nmodels: {w: {model: m}}\n").name == "from-env"


def test_malformed_reference_and_keys_not_interpolated() -> None:
    err = error(MINIMAL + "description: ${not valid}\n")
    assert err.path == ("description",) and "malformed ${...}" in str(err)
    assert "unknown key '${NAME}'" in str(error(MINIMAL + "${NAME}: x\n", {"NAME": "description"}))


# --- 3/4. validation errors: file, key path, line, plain words -----------------------------------


def test_unknown_key_with_suggestion_and_line() -> None:
    err = error(MINIMAL.replace("    reasoning: true\n", "    temprature: 0.2\n"))
    assert (err.file, err.path, err.line) == ("wf.yaml", ("models", "thinker", "temprature"), 5)
    assert str(err) == (
        "wf.yaml:5: models.thinker.temprature: unknown key 'temprature'; "
        "did you mean 'temperature'?"
    )


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    err = error(MINIMAL + "zzz: 1\n")
    allowed = (
        "(allowed: name, description, models, roles, limits, graph, allow_python, policy, policies)"
    )
    assert err.path == ("zzz",) and allowed in str(err)


def test_wrong_type_in_plain_words() -> None:
    err = error("name: t\nmodels:\n  w:\n    model: m\n    price: {input: abc}\n")
    assert (err.path, err.line) == (("models", "w", "price", "input"), 5)
    assert str(err) == "wf.yaml:5: models.w.price.input: expected a number, got 'abc'"


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        ("limits: {concurrency: 0}", "limits.concurrency", "must be at least 1, got 0"),
        ("limits: {max_subproblems: 65}", "limits.max_subproblems", "must be at most 64, got 65"),
        ("limits: {budget_usd: 0}", "limits.budget_usd", "must be greater than 0, got 0"),
        ("limits: {on_budget: panic}", "limits.on_budget", "expected 'degrade' or 'stop'"),
        ("limits: 3", "limits", "expected a mapping, got 3"),
        ("description: 2024", "description", "expected a string, got 2024 (quote it"),
        ("roles: {plan: [a]}", "roles.plan", "expected a string, got a list"),
    ],
)
def test_plain_messages(snippet: str, path: str, message: str) -> None:
    err = error(MINIMAL + snippet + "\n")
    assert f"{path}: {message}" in str(err)
    assert err.line == 8


def test_missing_required_keys() -> None:
    err = error("name: t\nmodels:\n  w:\n    reasoning: true\n")
    assert (err.path, err.line) == (("models", "w", "model"), 3)
    assert "missing required key 'model'" in str(err)
    assert error("models: {w: {model: m}}\n").path == ("name",)
    assert "name: must not be empty" in str(error("name: ''\nmodels: {w: {model: m}}\n"))


def test_models_must_not_be_empty_and_names_are_checked() -> None:
    assert "define at least one model profile" in str(error("name: t\nmodels: {}\n"))
    err = error("name: t\nmodels:\n  w: {model: m}\n  2fast: {model: m}\n")
    assert (err.path, err.line) == (("models", "2fast"), 4)
    assert "invalid profile name '2fast'" in str(err)


def test_several_errors_are_listed_one_per_line_first_one_carries_the_location() -> None:
    err = error("""\
        name: t
        models:
          w:
            model: m
            retries: -1
            price: {output: x}
        limits: {concurrency: many}
        """)
    assert (err.file, err.path, err.line) == ("wf.yaml", ("models", "w", "retries"), 5)
    assert str(err).splitlines() == [
        "wf.yaml:5: models.w.retries: must be at least 0, got -1",
        "wf.yaml:6: models.w.price.output: expected a number, got 'x'",
        "wf.yaml:7: limits.concurrency: expected a whole number, got 'many'",
    ]
    assert "pydantic" not in str(err) and "further information" not in str(err)


def test_errors_without_a_file_still_give_the_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_workflow("name: t\nmodels: {w: {model: m, retries: x}}\n", environ={})
    assert str(info.value).startswith("line 2: models.w.retries: expected a whole number")


# --- 5. secrets ----------------------------------------------------------------------------------


def test_api_key_never_shown() -> None:
    spec = parse("name: t\nmodels: {w: {model: m, api_key: '${OPENAI_API_KEY}'}}\n")
    for shown in (repr(spec), str(spec), spec.model_dump_json(), repr(spec.models["w"])):
        assert KEY not in shown
    assert spec.models["w"].api_key is not None
    assert spec.models["w"].api_key.get_secret_value() == KEY


def test_api_key_is_registered_for_redaction() -> None:
    odd_key = "not-a-known-key-shape-42"
    parse(f"name: t\nmodels: {{w: {{model: m, api_key: {odd_key}}}}}\n")
    assert redact(f"endpoint said: bad key {odd_key}") == "endpoint said: bad key ***"


# --- 6. unknown keys at every level ------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "path"),
    [
        ("extra: 1", "extra"),
        ("roles: {plann: thinker}", "roles.plann"),
        ("limits: {concurency: 2}", "limits.concurency"),
        ("models: {w: {model: m, price: {inputs: 1}}}", "models.w.price.inputs"),
        ("models: {w: {model: m, top_p: 1}}", "models.w.top_p"),
    ],
)
def test_unknown_keys_at_every_level(snippet: str, path: str) -> None:
    base = MINIMAL if not snippet.startswith("models") else "name: t\n"
    err = error(base + snippet + "\n")
    assert f"{path}: unknown key" in str(err)
    assert err.line == base.count("\n") + 1


def test_close_misspelling_inside_price_and_limits() -> None:
    assert "did you mean 'cached_input'" in str(
        error("name: t\nmodels: {w: {model: m, price: {cache_input: 1}}}\n")
    )
    assert "did you mean 'concurrency'" in str(error(MINIMAL + "limits: {concurency: 2}\n"))


# --- 7. roles and fallbacks ----------------------------------------------------------------------


def test_unknown_role_reference_at_its_line() -> None:
    err = error(MINIMAL + "roles:\n  plan: thinker\n  generate: writr\n")
    assert (err.path, err.line) == (("roles", "generate"), 10)
    assert "unknown profile 'writr'; did you mean 'writer'? (profiles: thinker, writer)" in str(err)


def test_role_defaults_with_one_profile() -> None:
    spec = parse("name: t\nmodels: {only: {model: m, reasoning: true}}\n")
    assert spec.roles.model_dump() == dict.fromkeys(
        ("plan", "reason", "generate", "synthesize"), "only"
    )


def test_role_defaults_with_several_profiles() -> None:
    text = "name: t\nmodels: {w: {model: m}, w2: {model: m}, r: {model: o, reasoning: true}}\n"
    roles = parse(text).roles
    assert (roles.plan, roles.reason, roles.generate, roles.synthesize) == ("r", "r", "w", "w")
    explicit = parse(text + "roles: {generate: w2}\n").roles
    assert (explicit.plan, explicit.generate, explicit.synthesize) == ("r", "w2", "w")
    no_reasoning = parse("name: t\nmodels: {a: {model: m}, b: {model: m}}\n").roles
    assert (no_reasoning.plan, no_reasoning.generate) == ("a", "a")
    all_reasoning = parse(
        "name: t\nmodels: {a: {model: m, reasoning: true}, b: {model: m, reasoning: true}}\n"
    ).roles
    assert (all_reasoning.plan, all_reasoning.synthesize) == ("a", "a")


def test_fallback_references() -> None:
    ok = parse("name: t\nmodels:\n  a: {model: m, fallback: b}\n  b: {model: m}\n")
    assert ok.models["a"].fallback == "b"
    unknown = error("name: t\nmodels:\n  a: {model: m}\n  b:\n    model: m\n    fallback: c\n")
    assert (unknown.path, unknown.line) == (("models", "b", "fallback"), 6)
    assert "unknown profile 'c'" in str(unknown)
    itself = error("name: t\nmodels:\n  a: {model: m, fallback: a}\n")
    assert itself.path == ("models", "a", "fallback") and "fall back to itself" in str(itself)
    loop = error("name: t\nmodels:\n  a: {model: m, fallback: b}\n  b: {model: m, fallback: a}\n")
    assert loop.line == 3 and "fallback loop: a -> b -> a" in str(loop)


# --- profile rules ------------------------------------------------------------------------------


def test_temperature_rejected_for_reasoning_profiles() -> None:
    err = error(
        "name: t\nmodels:\n  r:\n    model: o3\n    reasoning: true\n    temperature: 0.2\n"
    )
    assert (err.path, err.line) == (("models", "r", "temperature"), 6)
    assert "reasoning models reject temperature; remove it" in str(err)
    assert parse("name: t\nmodels: {g: {model: m, temperature: 0.2}}\n").models["g"].temperature


@pytest.mark.parametrize("key", ["base_url: http://x", "api_key: abcdefgh"])
def test_local_provider_takes_no_endpoint(key: str) -> None:
    err = error(f"name: t\nmodels:\n  l:\n    model: m\n    provider: local\n    {key}\n")
    name = key.split(":")[0]
    assert err.line == 6 and f"provider: local runs the embedded model; remove {name}" in str(err)


def test_base_url_must_be_http_and_blank_means_unset() -> None:
    assert "http:// or https:// URL" in str(
        error("name: t\nmodels: {w: {model: m, base_url: x}}\n")
    )
    spec = parse("name: t\nmodels: {w: {model: m, base_url: '${NOPE:-}', api_key: ''}}\n")
    assert spec.models["w"].base_url is None and spec.models["w"].api_key is None


def test_effective_instruction_role() -> None:
    reasoning = ModelProfile(model="o3", reasoning=True)
    assert reasoning.effective_instruction_role("https://api.openai.com/v1") == "developer"
    assert reasoning.effective_instruction_role("http://localhost:8000/v1") == "system"
    assert ModelProfile(model="m").effective_instruction_role("https://api.openai.com/v1") == (
        "system"
    )
    forced = ModelProfile(model="o3", reasoning=True, instruction_role="system")
    assert forced.effective_instruction_role("https://api.openai.com/v1") == "system"


def test_effective_think_tags() -> None:
    assert ModelProfile(model="m", provider="local", reasoning=True).effective_think_tags
    assert not ModelProfile(model="m", provider="local").effective_think_tags
    assert not ModelProfile(model="m", reasoning=True).effective_think_tags
    assert ModelProfile(model="m", think_tags=True).effective_think_tags


def test_python_construction_validates_references_too() -> None:
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        WorkflowSpec(name="t", models={"a": ModelProfile(model="m")}, roles=Roles(plan="nope"))


# --- load_workflow -----------------------------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(SpecError, match=r"no such workflow file: nowhere/x\.yaml"):
        load_workflow("nowhere/x.yaml")


def test_bare_name_resolves_to_a_shipped_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "quickstart.yaml").write_text("name: quick\nmodels: {w: {model: m}}\n")
    monkeypatch.setattr(specload, "_shipped_dirs", lambda: [tmp_path])
    monkeypatch.chdir(tmp_path.parent)
    spec = load_workflow("quickstart")
    assert spec.name == "quick" and spec.source == str(tmp_path / "quickstart.yaml")
    with pytest.raises(SpecError, match=r"no such workflow file: other \(shipped workflows: quick"):
        load_workflow("other")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nmodels: {w: {model: m, retries: x}}\n")
    with pytest.raises(SpecError) as info:
        load_workflow(bad)
    assert str(info.value).startswith(f"{bad}:2: models.w.retries: ")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_workflow(binary)


# --- JSON Schema ---------------------------------------------------------------------------------


def _objects(node: object) -> list[dict[str, object]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def test_json_schema() -> None:
    schema = workflow_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "orchestrator workflow"
    jsonschema.Draft202012Validator.check_schema(schema)
    # Only the free-form values are open: a graph's initial state, the JSON Schemas a node
    # or a cascade's schema check gives, and a langchain profile's kwargs.
    open_objects = [o for o in _objects(schema) if o.get("additionalProperties") is True]
    state = schema["$defs"]["GraphSpec"]["properties"]["state"]
    node_schema = schema["$defs"]["NodeSpec"]["properties"]["schema"]["anyOf"][0]
    check_schema = schema["$defs"]["CascadePolicy"]["properties"]["schema"]["anyOf"][0]
    kwargs = schema["$defs"]["ModelProfile"]["properties"]["kwargs"]
    assert len(open_objects) == 4
    for free in (state, node_schema, check_schema, kwargs):
        assert any(o is free for o in open_objects)
    assert all("additionalProperties" in obj for obj in _objects(schema))
    assert "source" not in schema["properties"]
    profile = schema["$defs"]["ModelProfile"]["properties"]
    assert all(field.get("description") for field in profile.values())
    validator = jsonschema.Draft202012Validator(schema)
    raw = yaml.safe_load(VALID.read_text())
    assert not list(validator.iter_errors(raw))
    raw["models"]["thinker"]["max_output_tokens"] = "${MAXTOK:-100}"
    assert not list(validator.iter_errors(raw))
    raw["models"]["thinker"]["temprature"] = 1
    assert list(validator.iter_errors(raw))
    assert list(validator.iter_errors({"name": "t", "models": {"2bad": {"model": "m"}}}))
