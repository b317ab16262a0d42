import pytest
import torch

from protoken.errors import UserError
from protoken.models import TINY_MODELS, fingerprint, load_model


def test_tiny_models_are_identical_in_every_process():
    a, b = load_model("tiny-qwen2"), load_model("tiny-qwen2")
    assert fingerprint(a.model.state_dict()) == fingerprint(b.model.state_dict())
    assert fingerprint(a.model.state_dict()) != fingerprint(load_model("tiny-llama").model.state_dict())


@pytest.mark.parametrize("spec", TINY_MODELS)
def test_any_hugging_face_directory_loads_in_place_of_the_default(tmp_path, spec):
    source = load_model(spec)
    source.model.save_pretrained(tmp_path / spec)
    source.tokenizer.save_pretrained(tmp_path / spec)
    loaded = load_model(str(tmp_path / spec))
    assert type(loaded.model) is type(source.model)
    assert fingerprint(loaded.model.state_dict()) == fingerprint(source.model.state_dict())
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(loaded.model(ids).logits, source.model(ids).logits)


def test_unknown_model_and_bad_directory(tmp_path):
    with pytest.raises(UserError, match="unknown model 'smollm3'"):
        load_model("smollm3")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
