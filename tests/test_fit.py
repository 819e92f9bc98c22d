"""hetskel.train.fit: the one optimisation loop (toy regression, hooks, early stop, schedules,
clipping, AMP scaler, non-finite losses, and bit-equality with the hand-written loop it replaces)."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hetskel.train.fit import NonFiniteLossError, fit


def toy(n=64, d=3, seed=0):
    """``x (n, d)``, ``y (n, 1) = x @ w + 0.5`` (exactly linear: a Linear layer can reach zero loss)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.5


def shuffled(n, batch_size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lambda epoch: torch.randperm(n, generator=g).split(batch_size)


def test_converges_on_a_toy_regression():
    x, y = toy()
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    first = F.mse_loss(net(x), y).item()
    steps = fit(opt, lambda idx: F.mse_loss(net(x[idx]), y[idx]), shuffled(64, 16), epochs=60)
    assert steps == 60 * 4
    assert F.mse_loss(net(x), y).item() < 1e-4 * first
    assert torch.allclose(net.bias, torch.tensor([0.5]), atol=1e-3)


def test_hooks_see_every_step_and_epoch_and_the_loss_fn_output():
    x, y = toy()
    net = nn.Linear(3, 1)
    seen_epochs, drawn, outs = [], [], []

    def batches(epoch):
        drawn.append(epoch)
        return torch.arange(64).split(20)  # 20, 20, 20, 4

    def loss_fn(idx):
        return {"loss": F.mse_loss(net(x[idx]), y[idx]), "n": len(idx)}

    steps = fit(torch.optim.SGD(net.parameters(), lr=0.01), loss_fn, batches, epochs=5, start_epoch=2,
                on_step=outs.append, on_epoch_end=seen_epochs.append)
    assert drawn == seen_epochs == [2, 3, 4]
    assert steps == len(outs) == 3 * 4
    assert [o["n"] for o in outs[:4]] == [20, 20, 20, 4]
    assert all(o["loss"].ndim == 0 for o in outs)


def test_on_epoch_end_returning_true_stops_and_empty_epochs_are_fine():
    x, y = toy()
    net = nn.Linear(3, 1)
    ends = []

    def on_epoch_end(epoch):
        ends.append(epoch)
        return epoch == 1

    steps = fit(torch.optim.SGD(net.parameters(), lr=0.01), lambda idx: F.mse_loss(net(x[idx]), y[idx]),
                lambda epoch: torch.arange(64).split(32), epochs=10, on_epoch_end=on_epoch_end)
    assert ends == [0, 1] and steps == 4
    # a batch source may run dry (a step budget met): no step, the epoch still ends
    assert fit(torch.optim.SGD(net.parameters(), lr=0.01), None, lambda epoch: [], epochs=3,
               on_epoch_end=ends.append) == 0
    assert ends[2:] == [0, 1, 2]


@pytest.mark.parametrize("schedule, lr", [("epoch", 1.0 * 0.5 ** 3), ("step", 1.0 * 0.5 ** 6)])
def test_scheduler_steps_per_epoch_or_per_step(schedule, lr):
    x, y = toy()
    net = nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)
    lrs = []
    fit(opt, lambda idx: F.mse_loss(net(x[idx]), y[idx]) * 0, lambda epoch: torch.arange(64).split(32), epochs=3,
        scheduler=sched, schedule=schedule, on_step=lambda out: lrs.append(opt.param_groups[0]["lr"]))
    assert opt.param_groups[0]["lr"] == pytest.approx(lr)
    assert lrs[:2] == ([1.0, 1.0] if schedule == "epoch" else [0.5, 0.25])
    with pytest.raises(ValueError, match="schedule must be"):
        fit(opt, None, lambda epoch: [], schedule="batch")


def test_grad_clip_bounds_the_global_norm():
    x, y = toy()
    net = nn.Linear(3, 1)
    norms = []

    def grad_norm(out):  # grads stay until the next zero_grad
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()])).item())

    fit(torch.optim.SGD(net.parameters(), lr=1e-3), lambda idx: 100 * F.mse_loss(net(x[idx]), y[idx]),
        lambda epoch: torch.arange(64).split(16), epochs=2, grad_clip=0.25, on_step=grad_norm)
    assert len(norms) == 8 and max(norms) <= 0.25 + 1e-5


def _adam_weights(scaler):
    x, y = toy()
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    fit(torch.optim.Adam(net.parameters(), lr=0.01), lambda idx: F.mse_loss(net(x[idx]), y[idx]),
        shuffled(64, 8), epochs=3, grad_clip=1.0, scaler=scaler)
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_a_disabled_grad_scaler_changes_nothing():
    assert torch.equal(_adam_weights(None), _adam_weights(torch.amp.GradScaler("cuda", enabled=False)))


def test_non_finite_loss_is_reported_before_it_reaches_the_weights():
    x, y = toy()
    net = nn.Linear(3, 1)
    calls = []

    def loss_fn(idx):
        calls.append(len(calls))
        loss = F.mse_loss(net(x[idx]), y[idx])
        return loss * float("nan") if len(calls) == 7 else loss  # epoch 1, step 2 with 4 batches an epoch

    snapshot = []
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at epoch 1, step 2") as e:
        fit(torch.optim.SGD(net.parameters(), lr=0.01), loss_fn, lambda epoch: torch.arange(64).split(16), epochs=3,
            check_finite=True, on_step=lambda out: snapshot.append(net.weight.detach().clone()))
    assert isinstance(e.value, FloatingPointError)
    assert torch.equal(net.weight, snapshot[-1]) and torch.isfinite(net.weight).all()
    # without the check the NaN goes through, as a hand-written loop would let it
    calls.clear()
    fit(torch.optim.SGD(net.parameters(), lr=0.01), loss_fn, lambda epoch: torch.arange(64).split(16), epochs=2)
    assert not torch.isfinite(net.weight).all()


def _probe_setup():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 1))  # dropout: global RNG
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    return net, opt, torch.optim.lr_scheduler.MultiStepLR(opt, [2], 0.1), torch.Generator().manual_seed(0)


def test_same_numbers_as_the_hand_written_loop():
    """fit is a refactor: zero_grad/backward/step/scheduler in the same order draw the same numbers."""
    x, y = toy(n=50)
    net, opt, sched, g = _probe_setup()
    for _ in range(4):
        for idx in torch.randperm(50, generator=g).split(16):
            loss = F.mse_loss(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    by_hand = torch.cat([p.detach().flatten() for p in net.parameters()])

    net, opt, sched, g = _probe_setup()
    fit(opt, lambda idx: F.mse_loss(net(x[idx]), y[idx]), lambda epoch: torch.randperm(50, generator=g).split(16),
        epochs=4, scheduler=sched, schedule="epoch")
    assert torch.equal(by_hand, torch.cat([p.detach().flatten() for p in net.parameters()]))
