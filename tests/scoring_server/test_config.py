"""Configuration layering and validation."""
from pathlib import Path

import pytest
import yaml

from scoring_server.config import ConfigError, default_values, load_config

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
