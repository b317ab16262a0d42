import pytest

from protoken.config import dump_config, load_config
from protoken.errors import UserError


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text('[federation]\nrounds = 5\nmodel = "tiny-llama"\n[training]\nlearning_rate = 1e-3\n')
    config = load_config(path, ["training.batch_size=4", "federation.address=0.0.0.0:9000"])
    assert config.federation.rounds == 5
    assert config.training.learning_rate == 1e-3
    assert config.training.batch_size == 4
    assert config.federation.address == "0.0.0.0:9000"
    again = tmp_path / "dump.toml"
    again.write_text(dump_config(config))
    assert load_config(again).to_dict() == config.to_dict()


@pytest.mark.parametrize("text, key", [
    ("[federation]\nrondus = 3\n", "federation.rondus"),
    ("[federation]\nrounds = 'three'\n", "federation.rounds"),
    ("[training]\nbatch_size = 0\n", "training.batch_size"),
    ("[federation]\nquorum = 1.5\n", "federation.quorum"),
    ("[trainig]\nmode = 'lora'\n", "[trainig]"),
    ("[training]\nmode = 'qlora'\n", "training.mode"),
    ("[attribution]\nobjective = 'loss'\n", "attribution.objective"),
    ("[federation]\nround_timeout_s = inf\n", "federation.round_timeout_s"),
    ("[federation]\nwait_timeout_s = -5\n", "federation.wait_timeout_s"),
    ("[training]\nlearning_rate = inf\n", "training.learning_rate"),
    ("[training]\nweight_decay = -0.1\n", "training.weight_decay"),
    ("[lora]\ndropout = 5.0\n", "lora.dropout"),
    ("[lora]\nalpha = -1\n", "lora.alpha"),
    ("[privacy]\nnoise_multiplier = -1\n", "privacy.noise_multiplier"),
    ("[privacy]\nmax_grad_norm = 0\n", "privacy.max_grad_norm"),
    ("[evaluation]\nexamples_per_domain = -3\n", "evaluation.examples_per_domain"),
    ("[attribution]\nthreshold = nan\n", "attribution.threshold"),
])
def test_malformed_config_names_the_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")
    path = tmp_path / "broken.toml"
    path.write_text("[federation\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(UserError, match="section.key=value"):
        load_config(None, ["rounds=3"])


@pytest.mark.parametrize("address", ["127.0.0.1:99999", ":50051", "host:", "nonsense", "host:port"])
def test_bad_addresses_are_refused(address):
    with pytest.raises(UserError, match="federation.address"):
        load_config(None, [f'federation.address="{address}"'])


def test_flag_values_are_taken_as_they_are(tmp_path):
    config = load_config(None, [], {"federation": {"state_dir": 'a"b\\tx', "rounds": 2}})
    assert config.federation.state_dir == 'a"b\\tx' and config.federation.rounds == 2
