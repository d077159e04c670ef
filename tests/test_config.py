"""Config loading: defaults, and one clear line (file, key, fix) with exit code 2 for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostha import config
from ghostha.errors import ConfigError

GOOD = """
stack: ghost-ha
network:
  subnets: [subnet-aaa, subnet-bbb]
  security_group: sg-123
"""


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "ghostha.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_fill_in_the_contract(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.cluster.name == "ghost-ha" and cfg.cluster.instance_count == 2
    assert cfg.cluster.ami.startswith("ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023")
    assert (cfg.task.family, cfg.task.container, cfg.task.container_port) == ("ghost", "ghost", 2368)
    assert (cfg.service.desired_count, cfg.service.minimum_healthy_percent, cfg.service.maximum_percent) == (6, 50, 200)
    assert (cfg.load_balancer.name, cfg.load_balancer.target_group) == ("ghost-elb", "ghost-tg")
    assert cfg.tags == {"ghostha:stack": "ghost-ha"}


def test_example_config_is_valid() -> None:
    cfg = config.load(str(Path(__file__).parent.parent / "config.example.yaml"))
    assert cfg.stack == "ghost-ha"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD + "colour: blue\n", "unknown key 'colour'"),
        (GOOD + "cluster:\n  instance_cont: 2\n", "unknown key 'cluster.instance_cont'"),
        (GOOD.replace("stack: ghost-ha", ""), "missing required key 'stack'"),
        (GOOD.replace("  security_group: sg-123\n", ""), "missing required key 'network.security_group'"),
        (GOOD + "cluster:\n  instance_count: two\n", "'cluster.instance_count' must be a whole number"),
        (GOOD + "cluster:\n  instance_count: true\n", "'cluster.instance_count' must be a whole number"),
        (GOOD + "cluster:\n  instance_count: 0\n", "'cluster.instance_count' must be between 1 and 100"),
        (GOOD + "task:\n  container_port: 70000\n", "'task.container_port' must be between 1 and 65535"),
        (GOOD + "service:\n  maximum_percent: 300\n", "'service.maximum_percent' must be between 100 and 200"),
        (GOOD + "service:\n  minimum_healthy_percent: 100\n  maximum_percent: 100\n", "must be below"),
        (GOOD.replace("subnet-bbb", "sub-bbb"), "'network.subnets' must be subnet ids"),
        (GOOD.replace("sg-123", "default"), "'network.security_group' must be a security group id"),
        (GOOD + "cluster:\n  ami: ubuntu\n", "'cluster.ami' must be an AMI id"),
        (GOOD.replace("stack: ghost-ha", "stack: 9lives"), "'stack' must start with a letter"),
        ("stack: ghost-ha\nnetwork: [1]\n", "'network' must be a mapping"),
        ("stack: [unclosed\n", "line 2"),
        ("- a list\n", "must hold a mapping"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert needle in err.value.message
    assert path in err.value.message, "the message names the file"


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(str(tmp_path / "nope.yaml"))
    assert "not found" in err.value.message and err.value.hint and "config.example.yaml" in err.value.hint


def test_env_var_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.replace("ghost-ha", "from-env"))
    monkeypatch.setenv("GHOSTHA_CONFIG", path)
    assert config.load(None).stack == "from-env"


def test_a_misspelt_key_or_file_name_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "cluster:\n  instance_cont: 2\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.hint and err.value.hint.startswith("did you mean 'cluster.instance_count'?")
    (tmp_path / "ghostha-sandbox.yaml").write_text(GOOD)
    with pytest.raises(ConfigError) as err:
        config.load(str(tmp_path / "ghostha-sanbox.yaml"))
    assert err.value.hint == f"did you mean {tmp_path / 'ghostha-sandbox.yaml'}?"
    with pytest.raises(ConfigError) as err:
        config.load(str(tmp_path / "prod.yaml"))
    assert err.value.hint and "config.example.yaml" in err.value.hint, "nothing close: how to get a config"
