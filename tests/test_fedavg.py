import torch

from protoken.server.aggregation import FedAvgAccumulator


def test_weighted_average_matches_hand_computation():
    a = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([10.0])}
    b = {"w": torch.tensor([[5.0, 6.0], [7.0, 8.0]]), "b": torch.tensor([20.0])}
    c = {"w": torch.tensor([[0.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([-5.0])}
    acc = FedAvgAccumulator(a)
    for state, n in ((a, 1), (b, 3), (c, 6)):
        acc.add(state, n)
    result = acc.result()
    # (1*a + 3*b + 6*c) / 10, by hand
    assert torch.allclose(result["w"], torch.tensor([[1.6, 2.0], [2.4, 3.4]]))
    assert torch.allclose(result["b"], torch.tensor([4.0]))
    assert result["w"].dtype == torch.float32
    assert acc.count == 3 and acc.total_examples == 10


def test_accumulator_keeps_no_update():
    """Memory is one float64 sum per tensor, whatever the number of updates."""
    ref = {"w": torch.zeros(4)}
    acc = FedAvgAccumulator(ref)
    for i in range(50):
        acc.add({"w": torch.full((4,), float(i))}, 1)
    held = [v for v in vars(acc).values() if isinstance(v, dict)]
    assert all(len(d) == 1 for d in held)
    assert torch.allclose(acc.result()["w"], torch.full((4,), 24.5))


def test_rejects_empty():
    acc = FedAvgAccumulator({"w": torch.zeros(1)})
    try:
        acc.result()
    except ValueError as exc:
        assert "no update" in str(exc)
    else:
        raise AssertionError("result() without updates must fail")
