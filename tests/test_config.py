"""Experiment config: the shipped YAMLs, section.key=value overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from poseguide.config import Config, ConfigError, load_config, parse_override, save_config
from poseguide.losses import LossConfig
from poseguide.model import ModelConfig, preset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, size", [("small", 128), ("base", 128), ("large", 256)])
def test_shipped_configs_load(name, size):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert isinstance(config.model, ModelConfig) and isinstance(config.loss, LossConfig)
    assert config.model.image_size == size
    assert config.training.output_dir == f"runs/{name}"
    assert str(size) in config.data.dataset
    # The YAML is the experiment; the preset is what benchmarks and tests build: they must agree.
    assert config.model == preset(name, cond_dropout=config.model.cond_dropout)


def test_small_config_is_the_cpu_default():
    config = load_config(CONFIGS / "small.yaml")
    assert config.logging.report_to == "wandb"
    assert config.training.max_minutes is not None  # the main job fits its time on any CPU
    assert config.training.init_from == "pose-prior"  # and starts from the shipped pre-trained model


@pytest.mark.parametrize("name", ["small", "base", "large"])
def test_every_config_chooses_its_precision_by_hardware(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert (config.training.mixed_precision, config.training.channels_last) == ("auto", "auto")


def test_overrides_are_typed_against_the_dataclass(tmp_path):
    path = write(tmp_path, "training:\n  max_steps: 10\n")
    config = load_config(
        path,
        [
            "training.max_steps=200",
            "training.learning_rate=1e-4",  # YAML 1.1 alone would read this as a string
            "training.checkpoints_total_limit=null",
            "training.channels_last=true",
            "logging.report_to=none",  # a Literal choice, not None
            "logging.run_name=123",  # str fields stay strings
            "model.channels=16,32,64,128",
            "data.dataset=some/dir",
        ],
    )
    assert config.training.max_steps == 200
    assert config.training.learning_rate == pytest.approx(1e-4) and isinstance(config.training.learning_rate, float)
    assert config.training.checkpoints_total_limit is None
    assert config.training.channels_last is True
    assert config.logging.report_to == "none"
    assert config.logging.run_name == "123"
    assert config.model.channels == (16, 32, 64, 128)
    assert config.data.dataset == "some/dir"


def test_yaml_values_are_checked_too(tmp_path):
    config = load_config(write(tmp_path, "training:\n  learning_rate: 1e-3\n  mixed_precision: no\n"))
    assert config.training.learning_rate == pytest.approx(1e-3)
    assert config.training.mixed_precision == "no"  # a bare YAML `no` is false; read as the choice "no"
    with pytest.raises(ConfigError, match=r"^training.max_steps: expected an integer, got 'many'$"):
        load_config(write(tmp_path, "training:\n  max_steps: many\n"))


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.max_step=5", r"training.max_step: unknown key \(did you mean training.max_steps\?\)"),
        ("trainig.max_steps=5", r"unknown config section 'trainig' \(did you mean training\?\)"),
        ("training.max_steps=abc", r"training.max_steps: expected an integer, got 'abc'"),
        ("training.max_steps=2.5", r"training.max_steps: expected an integer, got 2.5"),
        ("training.channels_last=maybe", r"training.channels_last: expected true or false or one of 'auto'"),
        ("training.mixed_precision=fp8", r"training.mixed_precision: expected one of 'auto', 'no', 'bf16', 'fp16'"),
        ("training.learning_rate=.inf", r"training: learning_rate must be a finite number > 0, got inf"),
        ("training.max_minutes=0", r"training: max_minutes must be a finite number > 0 or null, got 0"),
        ("training.batch_size=0", r"training: batch_size must be >= 1, got 0"),
        ("model.image_size=100", r"model: image_size 100 is not divisible"),
        ("max_steps=5", r"should look like section.key=value"),
        ("training.max_steps", r"should look like section.key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2\)"):
        load_config(write(tmp_path, "training:\n  max_steps: : 3\nlogging: {}\n"))
    with pytest.raises(ConfigError, match="a config is a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match=r"^optimizer: unknown config section"):
        load_config(write(tmp_path, "optimizer:\n  lr: 1\n"))
    with pytest.raises(ConfigError, match=r"^loss.kl_weigth: unknown key \(did you mean loss.kl_weight\?\)$"):
        load_config(write(tmp_path, "loss:\n  kl_weigth: 1\n"))


def test_resolved_config_round_trips(tmp_path):
    config = load_config(CONFIGS / "small.yaml", ["training.max_steps=7", "model.latent_dim=64"])
    save_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    assert isinstance(again, Config)
    assert "channels:\n  - 32" in (tmp_path / "config.yaml").read_text()  # plain YAML lists, no Python tags


def test_parse_override_keeps_value_text():
    assert parse_override("logging.run_name=a=b") == ("logging.run_name", "a=b")


def test_an_empty_config_is_refused_unless_overrides_fill_it(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    with pytest.raises(ConfigError, match="the config is empty; start from configs/small.yaml"):
        load_config(path)
    assert load_config(path, ["data.dataset=elsewhere"]).data.dataset == "elsewhere"
