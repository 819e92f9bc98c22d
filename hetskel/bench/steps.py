"""The pretraining steps the benchmarks time: the paper's J+C+S model and UmURL's J+M+B with the same
encoder preset and views, SynHet data, the data part of a step, and device helpers. Shared by the
CPU benchmark (``hetskel.bench.performance``) and the GPU check (``hetskel.bench.gpu_check``)."""
from __future__ import annotations

import torch

# dense bf16 peak FLOP/s by device name (first match wins); --peak-tflops overrides
PEAK_BF16 = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12))

def synhet_dataset(num_samples: int, num_frames: int = 64, seed: int = 0):
    """A SynHet ``ArrayDataset`` ``{"ntu25": (N,2,T,25,3), "coco17": (N,2,T,17,2)}``, PYSKL-normalised."""
    from hetskel.data.batches import load_dataset
    from hetskel.data.synhet import generate

    d3, d2 = generate(num_samples=num_samples, num_frames=num_frames, seed=seed)
    return load_dataset({"ntu25": d3, "coco17": d2}, num_frames=num_frames)


def build_pretrainer(preset: str, lifter_width: int = 512, seed: int = 0):
    """The paper's model: ``HeteroProcessor`` (ntu25 -> J, lifted coco17 -> C, words -> S) + encoder.

    The text table is a seeded random ``(7, 512)`` stand-in for CLIP's (no download here); its cost
    in the step is identical (a 512 -> 1 linear map of 7 rows and a gather)."""
    from hetskel.hetero.pipeline import HeteroProcessor
    from hetskel.hetero.semantic import SemanticConfig, vocabulary
    from hetskel.model.encoder import UnifiedEncoder
    from hetskel.model.objective import Pretrainer

    torch.manual_seed(seed)
    words = len(vocabulary(SemanticConfig.for_frame("pyskl")))
    table = torch.randn(words, 512, generator=torch.Generator().manual_seed(seed))
    proc = HeteroProcessor({"J": "ntu25", "C": "coco17"}, semantic="words", text_table=table,
                           lifter_width=lifter_width)
    enc = UnifiedEncoder(preset, proc.modality_channels(), proc.layout.num_joints)
    return Pretrainer(enc, ("J", "C", "S"), processor=proc, seed=seed)


def build_classic(preset: str, seed: int = 0):
    """UmURL's J+M+B on ntu25 (``ClassicModalities``) with the same encoder preset and views."""
    from hetskel.model.encoder import UnifiedEncoder
    from hetskel.model.objective import ClassicModalities, Pretrainer

    torch.manual_seed(seed)
    enc = UnifiedEncoder(preset, {"J": 3, "M": 3, "B": 3}, 25)
    return Pretrainer(enc, ("J", "M", "B"), processor=ClassicModalities("ntu25"), seed=seed)


def pair_models(preset: str, lifter_width: int, process: str | None = None) -> dict:
    jcs = build_pretrainer(preset, lifter_width)
    if process is not None:
        jcs.process_mode = process
    return {"J+M+B": build_classic(preset), "J+C+S": jcs}


def lifter_gflops(obj) -> float:
    from hetskel.hetero.lifter import lifter_flops

    c = obj.encoder.config
    return sum(lifter_flops(l.in_joints, l.out_joints, l.init_args["width"], l.init_args["num_layers"],
                            c.num_frames, c.max_persons) for l in obj.processor.lifters.values()) / 1e9


def data_part(obj, ds, idx: torch.Tensor, g: torch.Generator) -> None:
    """What a step spends on data: gather the batch, K+1 crops and one spatial draw per source."""
    from hetskel.model.augment import crop_batch, spatial_augment, valid_lengths

    batch = ds.get_batch(idx)
    valid = valid_lengths(batch)
    for _ in range(len(obj.modalities) + 1):
        raw = crop_batch(batch, obj.encoder.config.num_frames, obj.augment, g, valid=valid)
        for k in ds.sources:
            spatial_augment(raw[k], obj.augment, g)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_flops(device: torch.device, override_tflops: float | None = None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for key, v in PEAK_BF16 if key in name), None)
