import numpy as np
import pytest
import torch

from hetskel.model.losses import (
    inter_loss,
    intra_loss,
    off_diagonal,
    umurl_loss,
    vc_reg,
)


def ref_vc_reg(x: np.ndarray) -> float:
    """Plain numpy, one entry at a time: 5 * mean relu(1 - std) + sum offdiag cov^2 / D."""
    b, d = x.shape
    x = x.astype(np.float64)
    std = np.sqrt(x.var(axis=0, ddof=1) + 1e-4)
    std_loss = np.mean(np.maximum(0.0, 1.0 - std))
    z = x - x.mean(axis=0)
    cov = z.T @ z / (b - 1)
    off = sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    return 5 * std_loss + off / d


def ref_mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def feats(n, d, seed, scale=1.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * scale


def test_off_diagonal():
    m = torch.arange(16.0).view(4, 4)
    expect = [m[i, j].item() for i in range(4) for j in range(4) if i != j]
    assert off_diagonal(m).tolist() == expect
    with pytest.raises(ValueError, match="square"):
        off_diagonal(torch.zeros(2, 3))


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.0])
def test_vc_reg_matches_reference(scale):
    x = feats(16, 6, seed=3, scale=scale)
    x[:, 1] = x[:, 0] * 0.5 + 0.1 * x[:, 1]     # correlated columns
    assert vc_reg(x).item() == pytest.approx(ref_vc_reg(x.numpy()), rel=1e-5)


def test_vc_reg_collapsed_vs_spread():
    collapsed = torch.ones(64, 8) * 3.0
    assert vc_reg(collapsed).item() == pytest.approx(5 * (1 - 0.01), rel=1e-6)
    spread = feats(4096, 8, seed=0)
    assert vc_reg(spread).item() < 0.05
    # a rank-one (perfectly correlated) batch pays the covariance term
    v = feats(256, 1, seed=1)
    assert vc_reg(v.expand(256, 8)).item() > 5.0
    with pytest.raises(ValueError, match="B >= 2"):
        vc_reg(torch.zeros(1, 4))


def test_umurl_loss_matches_plain_computation():
    mods = ["J", "C", "S"]
    z = {k: feats(10, 5, seed=i) for i, k in enumerate(mods)}
    zu = {k: feats(10, 5, seed=10 + i) for i, k in enumerate(mods)}
    out = umurl_loss(z, zu, lambda_=5.0)
    zn = {k: v.numpy() for k, v in z.items()}
    zun = {k: v.numpy() for k, v in zu.items()}
    intra = sum(ref_mse(zn[k], zun[k]) for k in mods)
    center = sum(zn[k] for k in mods) / 3
    inter = sum(ref_mse(zn[k], center) for k in mods)
    vc = sum(ref_vc_reg(a) for a in [*zn.values(), *zun.values()])
    assert out["intra"].item() == pytest.approx(intra, rel=1e-5)
    assert out["inter"].item() == pytest.approx(inter, rel=1e-5)
    assert out["vc"].item() == pytest.approx(vc, rel=1e-5)
    assert out["loss"].item() == pytest.approx(5 * (intra + inter) + vc, rel=1e-5)
    # in one process the all-gather is the identity
    assert umurl_loss(z, zu, gather=False)["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)
    assert intra_loss(z, zu).item() == pytest.approx(intra, rel=1e-5)
    assert inter_loss(z).item() == pytest.approx(inter, rel=1e-5)


def test_single_modality_reduces_to_two_view_invariance():
    z, zu = {"J": feats(8, 4, 0)}, {"J": feats(8, 4, 1)}
    out = umurl_loss(z, zu, lambda_=2.0)
    assert out["inter"].item() == 0.0
    assert out["loss"].item() == pytest.approx(
        2.0 * ref_mse(z["J"], zu["J"]) + ref_vc_reg(z["J"].numpy()) + ref_vc_reg(zu["J"].numpy()), rel=1e-5)


def test_umurl_loss_gradients_and_errors():
    z = {"J": feats(6, 4, 0).requires_grad_(), "C": feats(6, 4, 1).requires_grad_()}
    zu = {"J": feats(6, 4, 2).requires_grad_(), "C": feats(6, 4, 3).requires_grad_()}
    umurl_loss(z, zu)["loss"].backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (*z.values(), *zu.values()))
    with pytest.raises(ValueError, match="differ"):
        umurl_loss(z, {"J": zu["J"]})
    with pytest.raises(ValueError, match="shape"):
        umurl_loss({"J": feats(6, 4, 0)}, {"J": feats(6, 5, 0)})
    with pytest.raises(ValueError, match="at least one"):
        umurl_loss({}, {})


def test_half_precision_inputs_are_computed_in_float32():
    x = feats(32, 16, 0, scale=300.0)  # cov entries ~1e5: their squares overflow float16
    assert torch.isfinite(vc_reg(x.half())).item()


def _ddp_worker(rank, world, init_file, z_all, zu_all, out_q):
    import torch.distributed as tdist

    tdist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        n = z_all.shape[0] // world
        z = {"J": z_all[rank * n:(rank + 1) * n].clone().requires_grad_()}
        zu = {"J": zu_all[rank * n:(rank + 1) * n].clone().requires_grad_()}
        loss = umurl_loss(z, zu)["loss"]
        loss.backward()
        # as a list: a tensor would travel as a shared-memory handle that dies with this process
        out_q.put((rank, loss.item(), z["J"].grad.tolist()))
        tdist.barrier()  # neither rank tears gloo down while the other may still be talking to it
    finally:
        tdist.destroy_process_group()


@pytest.mark.slow
def test_distributed_loss_equals_the_global_batch_loss(tmp_path):
    """Two gloo ranks with half the batch each: the same loss as one process on the whole batch, and
    each rank's gradient is world x its slice of the global gradient (DDP's averaging divides it out)."""
    import torch.multiprocessing as mp

    z_all, zu_all = feats(8, 5, 0), feats(8, 5, 1)
    ref_z = z_all.clone().requires_grad_()
    ref = umurl_loss({"J": ref_z}, {"J": zu_all})["loss"]
    ref.backward()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(tmp_path / "store"), z_all, zu_all, q)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank, loss, grad in results:
        assert loss == pytest.approx(ref.item(), rel=1e-5)
        torch.testing.assert_close(torch.tensor(grad) / 2, ref_z.grad[rank * 4:(rank + 1) * 4])
