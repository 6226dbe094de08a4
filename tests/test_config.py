"""Config: defaults, presets, strict loading, one-line errors."""

from __future__ import annotations

import pytest

from infgan.config import PRESETS, Config, ConfigError, config_paths, resolve, save_config


def test_defaults_are_the_default_run():
    cfg = resolve()
    assert cfg == Config()
    assert cfg.loss.kind == "fdm" and cfg.train.steps == 1000


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads(preset):
    cfg = resolve(source=preset)
    assert isinstance(cfg, Config)


def test_reference_and_seed_presets_hold_their_values():
    ref, seed = resolve(source="reference"), resolve(source="seed")
    assert (ref.train.batch_size, ref.train.generator_lr, ref.train.critic_lr, ref.train.steps) == (
        1024,
        2e-4,
        1e-3,
        10000,
    )
    assert (seed.model.hidden_size, seed.model.mlp_size, seed.model.num_layers, seed.train.n_critic) == (96, 64, 2, 5)
    assert (seed.data.t_size, seed.data.size, seed.train.generator_lr) == (128, 10000, 4e-5)


def test_numbers_are_read_as_users_write_them():
    """YAML 1.1 reads 1e-4 and 1.0e6 as strings; where a float is expected they are numbers."""
    sets = ["loss.kind=gan", "train.generator_lr=1e-4", "train.critic_lr=1.0e6", "model.initial_scale=+.5"]
    cfg = resolve(sets=sets)
    assert (cfg.train.generator_lr, cfg.train.critic_lr, cfg.model.initial_scale) == (1e-4, 1e6, 0.5)


def test_a_scalar_section_in_a_file_is_refused_even_with_set_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: 5\n")
    for sets in ([], ["train.steps=3"]):
        with pytest.raises(ConfigError, match=r"'train' must be a mapping of keys to values, got 5"):
            resolve(source=str(path), sets=sets)


def test_set_overrides_parse_yaml_values():
    cfg = resolve(
        sets=["train.steps=7", "model.adjoint=false", "train.adam_betas=[0.0, 0.99]", "train.generator_lr=2"],
    )
    assert cfg.train.steps == 7 and cfg.model.adjoint is False
    assert cfg.train.adam_betas == (0.0, 0.99) and cfg.train.generator_lr == 2.0


@pytest.mark.parametrize(
    "sets, words",
    [
        (["train.lr=1"], ["unknown config key 'train.lr'", "train.generator_lr"]),
        (["nope.x=1"], ["unknown config key 'nope'"]),
        (["train.steps=1e3"], ["'train.steps' must be an integer", "write the whole number, e.g. 1000"]),
        (["train.generator_lr=-0.1"], ["'train.generator_lr' must be > 0"]),
        (["train.n_critic=0"], ["'train.n_critic' must be >= 1"]),
        (["train.steps=1.5"], ["'train.steps' must be an integer"]),
        (["train.steps=true"], ["'train.steps' must be an integer"]),
        (["loss.kind=hinge"], ["'loss.kind' must be one of gan, wgan_clip, wgan_gp, sig_score, fdm"]),
        (["model.adjoint=3"], ["'model.adjoint' must be true or false"]),
        (["train.adam_betas=[0.5]"], ["'train.adam_betas' must be a list of 2 numbers"]),
        (["train.device=gpu"], ["'train.device' must match"]),
        (["train=3"], ["'train' must be a mapping"]),
        (["train.steps"], ["--set expects KEY=VALUE"]),
        (["model.obs_noise_start=data"], ["'model.obs_noise_start' data", "set model.obs_noise > 0"]),
        (["model.obs_noise_start=auto"], ["'model.obs_noise_start' must be one of value, data"]),
        (["model.obs_noise_channels=[Open]"], ["'model.obs_noise_channels'", "set model.obs_noise > 0"]),
        (["model.obs_noise_learn=false"], ["'model.obs_noise_learn'", "set model.obs_noise > 0"]),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(sets, words):
    with pytest.raises(ConfigError) as e:
        resolve(sets=sets)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        resolve(source=str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve(source=str(listy))
    with pytest.raises(ConfigError, match="no file or preset named"):
        resolve(source=str(tmp_path / "missing.yaml"))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(ConfigError, match="not a text"):
        resolve(source=str(binary))
    with pytest.raises(ConfigError, match="is a directory"):
        resolve(source=str(tmp_path))


def test_saved_config_round_trips(tmp_path):
    cfg = resolve(source="seed", sets=["train.steps=3", "loss.kind=wgan_gp"])
    save_config(cfg, tmp_path / "c.yaml")
    assert resolve(source=str(tmp_path / "c.yaml")) == cfg


def test_config_paths_lists_every_leaf():
    paths = config_paths()
    for name in (
        "data.dataset",
        "data.t_size",
        "data.size",
        "model.initial_noise_size",
        "model.noise_size",
        "model.hidden_size",
        "model.mlp_size",
        "model.num_layers",
        "model.adjoint",
        "loss.kind",
        "loss.gp_weight",
        "train.steps",
        "train.batch_size",
        "train.n_critic",
        "train.generator_lr",
        "train.critic_lr",
        "train.swa_start",
        "eval.every",
        "checkpoint.every",
        "seed",
    ):
        assert name in paths
    assert resolve({"seed": 3}).seed == 3


def test_resolve_layers_in_order_and_checks_what_a_person_wrote(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {steps: 5, batch_size: 8}\n")
    cfg = resolve(
        {"train": {"steps": 6}},
        {"train": {"n_critic": 2}},
        source=str(path),
        sets=["loss.kind=gan", "train.n_critic=3"],
    )
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.n_critic) == (6, 8, 3)
    # a searcher's values may carry a critic setting for a criticless kind (no effect) ...
    assert resolve({"loss": {"kind": "fdm"}, "train": {"n_critic": 2}}).loss.kind == "fdm"
    # ... but not a layer someone wrote, nor --set
    with pytest.raises(ConfigError, match="'train.n_critic' is a critic setting"):
        resolve({"loss": {"kind": "fdm"}, "train": {"n_critic": 2}}, given="space.yaml: base")
    with pytest.raises(ConfigError, match="'train.n_critic' is a critic setting"):
        resolve(sets=["loss.kind=fdm", "train.n_critic=2"])


def test_the_critics_old_key_names_are_read_as_the_new_ones(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("loss: {kind: wgan_gp}\ntrain: {discriminator_lr: 0.3, discriminator_optimizer: adam}\n")
    cfg = resolve(source=str(old), sets=["train.discriminator_weight_decay=0.5"])
    assert (cfg.train.critic_lr, cfg.train.critic_optimizer, cfg.train.critic_weight_decay) == (0.3, "adam", 0.5)
    # A later layer under the new name overrides an earlier one under the old (a resumed run with --set).
    layered = resolve({"train": {"discriminator_lr": 0.3}}, sets=["loss.kind=gan", "train.critic_lr=0.2"])
    assert layered.train.critic_lr == 0.2
    save_config(cfg, tmp_path / "saved.yaml")
    text = (tmp_path / "saved.yaml").read_text()
    assert "critic_lr: 0.3" in text and "discriminator" not in text
    with pytest.raises(ConfigError, match="'train.discriminator_lr' is the old name of 'train.critic_lr'"):
        resolve(sets=["loss.kind=gan", "train.discriminator_lr=0.3", "train.critic_lr=0.2"])
