"""Configuration layering and validation, the files generated from the schema, and models files."""
import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from marshmallow import fields

from scoring_server.config import (ConfigError, ModelEntry, ServerConfig, config_from_environment, config_keys,
                                   default_values, load_config, model_entry, read_models_file)

DEFAULT_YAML = Path(__file__).parents[2] / "conf" / "default.yaml"


def test_conf_default_yaml_lists_exactly_the_defaults():
    assert yaml.safe_load(DEFAULT_YAML.read_text()) == default_values()


def test_layers_file_then_env_then_options(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("port: 6000\nworkers: 3\ntimeout: 10\n")
    config = load_config(path, env={"SCORING_SERVER_WORKERS": "4", "SCORING_SERVER_TIMEOUT": "20"},
                         overrides={"timeout": 30, "host": None})
    assert (config.port, config.workers, config.timeout, config.host) == (6000, 4, 30, "127.0.0.1")


def test_env_booleans_are_parsed():
    assert load_config(env={"SCORING_SERVER_EXPOSE_STACK_TRACES": "true"}).expose_stack_traces is True


@pytest.mark.parametrize(
    "content, key",
    [("port: lots\n", "port"), ("workers: 0\n", "workers"), ("colour: blue\n", "colour"),
     ("log_level: loud\n", "log_level")],
)
def test_bad_file_values_name_the_key(tmp_path, content, key):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=key):
        load_config(path, env={})


def test_bad_env_value_names_the_key():
    with pytest.raises(ConfigError, match="environment: port"):
        load_config(env={"SCORING_SERVER_PORT": "http"})


def test_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path, env={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", env={})


# --- one schema: generated files, env vars, docs --------------------------------------------

REPO = Path(__file__).parents[2]


def generator():
    """scripts/gen_config_docs.py, loaded as the module that writes the generated files."""
    import runpy

    return runpy.run_path(str(REPO / "scripts" / "gen_config_docs.py"))


def test_generated_files_equal_what_the_generator_writes_now():
    for path, text in generator()["generated_files"]().items():
        assert path.read_text() == text, f"{path} is stale: run python scripts/gen_config_docs.py"


def test_the_generator_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    gen = generator()
    stale = tmp_path / "default.yaml"
    stale.write_text("port: 5000\n")
    monkeypatch.setitem(gen["main"].__globals__, "generated_files", lambda: {stale: gen["render_default_yaml"]()})
    monkeypatch.setitem(gen["main"].__globals__, "REPO", tmp_path)
    assert gen["main"](["--check"]) == 1
    assert gen["main"]([]) == 0 and gen["main"](["--check"]) == 0


def test_the_config_dataclass_and_the_schema_have_the_same_keys():
    assert [f.name for f in dataclasses.fields(ServerConfig)] == [key.name for key in config_keys()]


def sample_value(key, tmp_path) -> str:
    """A valid value for ``key`` that differs from its default, as an environment variable would hold it."""
    if key.name == "models_file":
        (tmp_path / "models.yaml").write_text("{}")
        return str(tmp_path / "models.yaml")
    if key.name == "model_root":
        return str(tmp_path)
    if key.name == "model_formats":  # a list of formats: one that is not all of them
        return "skops"
    if key.name == "skops_trusted_types":  # a list of module.Name
        return "my_pkg.Scaler"
    if key.name == "device":  # cpu, cuda or cuda:N
        return "cuda:1"
    if key.name in ("certfile", "keyfile"):
        (tmp_path / "tls.pem").write_text("")
        return str(tmp_path / "tls.pem")
    if key.name == "cors_origins":
        return "https://a.example"
    if key.choices:
        return next(choice for choice in key.choices if choice != key.default)
    if key.name.endswith("_fraction"):  # a share, 0 to 1
        return "0.5"
    if key.name == "drift_warn_psi":  # at most drift_alert_psi
        return "0.15"
    if isinstance(key.field, fields.Boolean):
        return "false" if key.default else "true"
    return {fields.Integer: "7", fields.Float: "7.5"}.get(type(key.field), "x")


#: Keys valid only together with another one (HTTPS needs both files).
TOGETHER = {"certfile": next(k for k in config_keys() if k.name == "keyfile"),
            "keyfile": next(k for k in config_keys() if k.name == "certfile")}


@pytest.mark.parametrize("key", config_keys(), ids=lambda key: key.name)
def test_every_key_is_set_by_its_environment_variable(key, tmp_path):
    env = {key.env: sample_value(key, tmp_path)}
    partner = TOGETHER.get(key.name)
    if partner is not None:
        env[partner.env] = sample_value(partner, tmp_path)
    config = load_config(env=env)
    assert getattr(config, key.name) != key.default


@pytest.mark.parametrize("key", config_keys(), ids=lambda key: key.name)
def test_every_key_is_documented_with_its_env_var_and_flags(key):
    table_row = next((line for line in (REPO / "docs" / "configuration.md").read_text().splitlines()
                      if line.startswith(f"| `{key.name}` |")), "")
    assert key.env in table_row and all(flag in table_row for flag in key.flags)
    assert key.name in yaml.safe_load(DEFAULT_YAML.read_text())


def test_one_model_and_many_are_refused_even_from_different_layers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"model_root: {tmp_path}\n")
    with pytest.raises(ConfigError, match="model_uri: serve one model .* not both"):
        load_config(path, env={"SCORING_SERVER_MODEL_URI": "./model"})


def test_a_models_file_that_does_not_exist_is_refused_by_key(tmp_path):
    with pytest.raises(ConfigError, match="models_file: no such file"):
        load_config(env={"SCORING_SERVER_MODELS_FILE": str(tmp_path / "nope.yaml")})


def test_config_from_environment_reads_the_file_named_by_scoring_server_config(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("port: 6001\nthreads: 3\n")
    monkeypatch.setenv("SCORING_SERVER_CONFIG", str(path))
    monkeypatch.setenv("SCORING_SERVER_THREADS", "4")
    config = config_from_environment()
    assert (config.port, config.threads) == (6001, 4)


# --- models files and admin API entries --------------------------------------------------------

def models_file(tmp_path, content: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(content)
    return path


def test_models_file_both_forms_with_or_without_the_models_key(tmp_path):
    expected = [ModelEntry("a", "/m/a"), ModelEntry("b", "models:/b/Production", "mlflow1")]
    content = "a: /m/a\nb: {uri: models:/b/Production, protocol: mlflow1}\n"
    assert read_models_file(models_file(tmp_path, content)) == expected
    assert read_models_file(models_file(tmp_path, "models:\n" + "".join(f"  {line}\n" for line in content.splitlines()))) == expected


def test_models_file_unknown_protocol_is_refused_naming_the_file_and_model(tmp_path):
    path = models_file(tmp_path, "models:\n  churn: {uri: /m/churn, protocol: mlflow3}\n")
    with pytest.raises(ConfigError) as raised:
        read_models_file(path)
    assert str(path) in str(raised.value) and "'churn'" in str(raised.value) and "protocol" in str(raised.value)


@pytest.mark.parametrize("content, problem", [
    ("a: {url: x}\n", "uri: Missing data"),
    ("a: {uri: x, colour: red}\n", "colour: Unknown field"),
    ("a: {uri: x, name: b}\n", "name: Unknown field"),
    ("a: [x]\n", "needs a uri"),
    ("a: ''\n", "uri: Shorter than minimum length"),
    ('"a\\n": x\n', "name:"),
    ("- a\n", "mapping"),
])
def test_models_file_errors_say_what_is_wrong(tmp_path, content, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        read_models_file(models_file(tmp_path, content))


@pytest.mark.parametrize("name", ["a\n", "", "-a", "a b", "a/b", "x" * 201, 7, None])
def test_model_names_are_checked_whole(name):
    with pytest.raises(ConfigError, match="name"):
        model_entry(name, "/m/a", "POST /models")


def test_model_entry_accepts_valid_names_and_protocols():
    spec = {"uri": "/m/fraud", "protocol": "auto"}
    assert model_entry("Fraud-2.v1_x", spec, "POST /models") == ModelEntry("Fraud-2.v1_x", "/m/fraud", "auto")
    assert model_entry("x" * 200, "/m", "POST /models").name == "x" * 200
