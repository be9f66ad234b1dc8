"""Train torchvision's ResNet-18 from a leukemia-audit plan file.

    python train_resnet18.py RUN/plan.json
    torchrun --standalone --nproc_per_node 2 train_resnet18.py RUN/plan.json   (DistributedDataParallel)

leukemia-audit (TypeScript) audits the dataset, chooses labels, splits by subject, computes class weights and
writes the plan; this file only trains. It reads the images itself (torch.utils.data workers), trains with
torch.optim and an lr_scheduler, and writes into the run folder:

    model.safetensors       best epoch's weights, torchvision state_dict names (no safetensors package needed)
    checkpoint.safetensors  last epoch: weights, optimizer state ("optimizer/<parameter>/<slot>"), and in its
                            metadata the optimizer's param_groups, the scheduler's state and the history as
                            JSON; nothing in it is pickled, so resuming never runs code from the run folder
    predictions.json    per-image class probabilities of the best weights for the plan's val and test lists

It reports on stdout, one JSON object per line: {"type": "engine" | "log" | "phase" | "progress" | "epoch" |
"cancelled" | "result", ...}. Metrics, Grad-CAM and run.json are leukemia-audit's job, from these files.

    python train_resnet18.py WORK/inference-plan.json   (schema leukemia-audit/torch-inference)

runs inference only, for `leukemia-audit evaluate` (the logits of every image) and `probe` (the 512 average-
pooled features): see infer() below.
Needs torch >= 1.13 and torchvision, nothing else (numpy and PIL come with torchvision).
"""

import contextlib
import json
import math
import os
import struct
import sys
import threading
import time

import numpy as np
import torch
import torch.distributed as dist
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

PLAN_SCHEMA = "leukemia-audit/torch-plan"
PLAN_VERSION = 1
INFERENCE_SCHEMA = "leukemia-audit/torch-inference"
INFERENCE_VERSION = 1


# ---------------------------------------------------------------------------------------------------------
# Events: one JSON line each on stdout, written by rank 0 only.

RANK = int(os.environ.get("RANK", "0"))
WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))
_stdout_lock = threading.Lock()


def emit(event):
    if RANK != 0:
        return
    line = json.dumps(event, allow_nan=False)
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(message, level="info"):
    emit({"type": "log", "level": level, "message": message})


# ---------------------------------------------------------------------------------------------------------
# Preprocessing, the same as leukemia-audit's src/core/data/preprocess.ts (a test compares the two):
# crop, then resize with area averaging when shrinking and bilinear interpolation (half-pixel centres, edge
# pixels repeated) when enlarging, rounded once to bytes. torchvision's Resize would use an antialiased
# triangle filter instead, and the model would see slightly different pixels than leukemia-audit's own
# engine, predictions and Grad-CAM.


def load_rgb(path):
    """H x W x 3 uint8. Transparent pixels are background: alpha is composited over black."""
    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"), dtype=np.uint32)
            rgb = (rgba[:, :, :3] * rgba[:, :, 3:4] + 127) // 255
            return rgb.astype(np.uint8)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def round_half_up(value):
    return math.floor(value + 0.5)


def crop_box(rgb, crop, p):
    """(left, top, side) of the square to keep, or None for the whole image. See preprocess.ts cropBox."""
    height, width = rgb.shape[:2]
    if crop == "none":
        return None
    if crop == "center":
        side = max(1, round_half_up(min(width, height) * p["centerCropFraction"]))
        return (width - side) // 2, (height - side) // 2, side
    foreground = (rgb > p["blackThreshold"]).any(axis=2)
    rows = _span(foreground.sum(axis=1), max(1, round_half_up(width * p["minForegroundShare"])))
    columns = _span(foreground.sum(axis=0), max(1, round_half_up(height * p["minForegroundShare"])))
    if rows is None or columns is None:
        return None  # all black: no cell to find, keep the frame
    longer = max(columns[1] - columns[0] + 1, rows[1] - rows[0] + 1)
    side = longer + 2 * math.ceil(longer * p["cellMarginFraction"])
    left = _place_inside(round_half_up((columns[0] + columns[1] + 1 - side) / 2), side, width)
    top = _place_inside(round_half_up((rows[0] + rows[1] + 1 - side) / 2), side, height)
    return left, top, side


def _span(counts, minimum):
    kept = np.nonzero(counts >= minimum)[0]
    return None if len(kept) == 0 else (int(kept[0]), int(kept[-1]))


def _place_inside(start, side, limit):
    if side >= limit:
        return (limit - side) // 2
    return min(max(start, 0), limit - side)


def extract(rgb, box):
    """The crop box; where it reaches outside the image the pixels are black."""
    left, top, side = box
    height, width = rgb.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    x0, x1 = max(0, left), min(width, left + side)
    y0, y1 = max(0, top), min(height, top + side)
    if x1 > x0 and y1 > y0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = rgb[y0:y1, x0:x1]
    return out


def resampling_matrix(source, target):
    """target x source weights: row i says how much each source pixel contributes to target pixel i."""
    weights = np.zeros((target, source))
    scale = source / target
    for i in range(target):
        if scale >= 1:  # shrink: each source pixel counts by its overlap with [i*scale, (i+1)*scale)
            begin, end = i * scale, (i + 1) * scale
            for j in range(math.floor(begin), min(source, math.ceil(end))):
                overlap = min(end, j + 1) - max(begin, j)
                if overlap > 0:
                    weights[i, j] = overlap / scale
        else:  # enlarge: bilinear between the two nearest source centres
            position = min(max((i + 0.5) * scale - 0.5, 0), source - 1)
            left = math.floor(position)
            fraction = position - left
            weights[i, left] += 1 - fraction
            if fraction > 0:
                weights[i, left + 1] += fraction
    return weights


_matrices = {}


def resize(rgb, size):
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb.copy()
    for key in ((height, size), (width, size)):
        if key not in _matrices:
            _matrices[key] = resampling_matrix(*key)
    vertical, horizontal = _matrices[(height, size)], _matrices[(width, size)]
    # out[y, x, c] = sum_ij vertical[y, i] * rgb[i, j, c] * horizontal[x, j], in float64, rounded once.
    resized = np.einsum("yi,ijc,xj->yxc", vertical, rgb.astype(np.float64), horizontal, optimize=True)
    return np.clip(np.floor(resized + 0.5), 0, 255).astype(np.uint8)


def preprocess(path, size, crop, p):
    """The S x S x 3 uint8 pixels the network sees before augmentation and normalisation."""
    rgb = load_rgb(path)
    box = crop_box(rgb, crop, p)
    return resize(rgb if box is None else extract(rgb, box), size)


def augment(pixels, flip_horizontal, flip_vertical, turns, brightness, contrast):
    """A flip, then `turns` clockwise quarter turns, then contrast around the mean and brightness (batches.ts)."""
    out = pixels
    if flip_horizontal:
        out = out[:, ::-1]
    if flip_vertical:
        out = out[::-1, :]
    out = np.rot90(out, k=-turns)
    out = np.ascontiguousarray(out)
    if brightness != 1 or contrast != 1:
        mean = out.astype(np.float64).mean()
        value = ((out - mean) * contrast + mean) * brightness
        out = np.clip(np.floor(value + 0.5), 0, 255).astype(np.uint8)
    return out


class RandomCellAugmentation:
    """Random flips, quarter turns (a cell on a slide has no upright), brightness and contrast jitter."""

    def __init__(self, options):
        self.options = options

    def __call__(self, pixels):
        o = self.options
        draws = torch.rand(5).tolist()  # all five drawn even when an option is off, as in batches.ts
        return augment(
            pixels,
            flip_horizontal=o["flipHorizontal"] and draws[0] < 0.5,
            flip_vertical=o["flipVertical"] and draws[1] < 0.5,
            turns=min(3, int(draws[2] * 4)) if o["rotate90"] else 0,
            brightness=1 + o["brightness"] * (2 * draws[3] - 1),
            contrast=1 + o["contrast"] * (2 * draws[4] - 1),
        )


def to_normalised_tensor(pixels, mean, std):
    """H x W x 3 bytes -> 3 x H x W floats, (v / 255 - mean) / std: ToTensor + Normalize."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div_(255)
    return torchvision.transforms.functional.normalize(tensor, mean, std)


def readable_examples(root, examples):
    """The plan's examples without the images that cannot be decoded, and those ([{path, detail}]): as in
    leukemia-audit's own engine, an unreadable image is skipped and named rather than failing the run. Checked
    once before the first epoch: in a DataLoader worker the error would end the run, and a val/test image
    missing from the predictions would shift every later one."""
    unreadable = {}
    for rows in examples.values():
        for path, _ in rows:
            if path in unreadable:
                continue
            try:
                load_rgb(os.path.join(root, path))
            except Exception as error:  # PIL raises OSError, ValueError, SyntaxError… for damaged files
                unreadable[path] = f"pixels could not be decoded: {error}"
    kept = {split: [row for row in rows if row[0] not in unreadable] for split, rows in examples.items()}
    return kept, [{"path": path, "detail": detail} for path, detail in unreadable.items()]


class CellImages(Dataset):
    def __init__(self, root, examples, plan, augmentation=None):
        self.root = root
        self.examples = examples  # [[relative path, class index], ...]
        self.p = plan["preprocess"]
        self.augmentation = augmentation

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        path, label = self.examples[index]
        try:
            pixels = preprocess(os.path.join(self.root, path), self.p["imageSize"], self.p["crop"], self.p)
        except Exception as error:
            raise RuntimeError(f"cannot read {path}: {error}") from error
        if self.augmentation is not None:
            pixels = self.augmentation(pixels)
        return to_normalised_tensor(pixels, self.p["mean"], self.p["std"]), label


# ---------------------------------------------------------------------------------------------------------
# safetensors in plain Python: 8-byte little-endian header length, JSON header, raw little-endian tensors.

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        raw = tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path + ".tmp", "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for chunk in chunks:
            file.write(chunk)
    os.replace(path + ".tmp", path)


def read_safetensors(path, with_metadata=False):
    with open(path, "rb") as file:
        data = file.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", None) or {}
    types = {"F32": torch.float32, "F16": torch.float16, "F64": torch.float64, "I64": torch.int64}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + length + begin : 8 + length + end])
        tensors[name] = torch.frombuffer(raw, dtype=types[info["dtype"]]).reshape(info["shape"]).clone()
    return (tensors, metadata) if with_metadata else tensors


def trained_names(model):
    """Names of the optimised parameters, in the order the optimizer numbers them."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def save_checkpoint(path, model, optimizer, scheduler, progress):
    tensors = dict(model.state_dict())
    state = optimizer.state_dict()
    names = trained_names(model)
    for index, slots in state["state"].items():
        for slot, value in slots.items():
            tensors[f"optimizer/{names[index]}/{slot}"] = value if torch.is_tensor(value) else torch.tensor(float(value))
    schedule = {key: value for key, value in scheduler.state_dict().items() if key != "lr_lambdas"}
    resume = {"param_groups": state["param_groups"], "scheduler": schedule, **progress}
    write_safetensors(path, tensors, {"format": "pt", "engine": "torch", "epoch": str(progress["epoch"]), "resume": json.dumps(resume)})


def load_checkpoint(path, model, optimizer, scheduler):
    tensors, metadata = read_safetensors(path, with_metadata=True)
    if metadata.get("engine") != "torch":
        raise SystemExit(f"{path} was not written by this trainer; resume it with the engine that wrote it")
    resume = json.loads(metadata["resume"])
    model.load_state_dict({name: t for name, t in tensors.items() if not name.startswith("optimizer/")})
    slots = {}
    for index, name in enumerate(trained_names(model)):
        prefix = f"optimizer/{name}/"
        found = {key[len(prefix):]: t for key, t in tensors.items() if key.startswith(prefix)}
        if found:
            slots[index] = found
    optimizer.load_state_dict({"state": slots, "param_groups": resume.pop("param_groups")})
    scheduler.load_state_dict({**resume.pop("scheduler"), "lr_lambdas": [None]})
    return resume


# ---------------------------------------------------------------------------------------------------------
# Model, device, optimiser.


def choose_device(requested, local_rank):
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank if WORLD_SIZE > 1 else 0)
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {requested}: this torch ({torch.__version__}) sees no CUDA device")
        if WORLD_SIZE > 1:
            device = torch.device("cuda", local_rank)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SystemExit(f"--device mps: this torch ({torch.__version__}) has no usable MPS device")
    return device


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return "cpu"


# Which modules train under each strategy; the others are frozen and kept in eval mode (BatchNorm uses its
# running statistics), as leukemia-audit's own engine does for finetune and linear.
TRAINED = {"full": None, "finetune": ("layer4", "fc"), "linear": ("fc",)}


def build_model(plan, run_dir):
    model = torchvision.models.resnet18(num_classes=len(plan["classes"]))
    initial = plan["initialWeights"]
    if initial:
        state = read_safetensors(os.path.join(run_dir, initial))
        own = model.state_dict()
        mismatched = [name for name in ("fc.weight", "fc.bias") if name in state and state[name].shape != own[name].shape]
        for name in mismatched:  # a checkpoint for another class count: fc keeps its fresh initialisation
            del state[name]
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [n for n in missing if n not in mismatched and not n.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise SystemExit(f"{initial} is not a ResNet-18 state_dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    trained = TRAINED[plan["training"]["strategy"]]
    if trained is not None:
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.split(".")[0] in trained
    return model


def set_train_mode(model, strategy):
    model.train()
    trained = TRAINED[strategy]
    if trained is not None:
        for name, module in model.named_children():
            if name not in trained:
                module.eval()


def scheduled_factor(schedule, step, total_steps):
    """Learning-rate multiplier at `step`: cosine to 0, x0.1 at 50 % and x0.01 at 75 %, or 1 (optimizers.ts)."""
    progress = min(1.0, step / total_steps) if total_steps > 0 else 0.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":
        return 0.01 if progress >= 0.75 else 0.1 if progress >= 0.5 else 1.0
    return 1.0


def make_optimizer(plan, parameters):
    t = plan["training"]
    if t["optimizer"] == "adam":
        return torch.optim.Adam(parameters, lr=t["learningRate"], betas=(0.9, 0.999), eps=1e-8)
    return torch.optim.SGD(parameters, lr=t["learningRate"], momentum=0.9)


# ---------------------------------------------------------------------------------------------------------
# Cancel: leukemia-audit creates the plan's cancel file; training stops after the current batch. The run
# also stops when the process that started it goes away.


class CancelWatch:
    """`path`: the cancel file, or None where only the parent's going away stops (inference, which
    leukemia-audit cancels by ending the process: it has nothing to keep)."""

    def __init__(self, path):
        self.path = path
        parent = os.environ.get("LEUKEMIA_AUDIT_PARENT_PID")
        self.parent = int(parent) if parent and os.name == "posix" else None

    def parent_gone(self):
        if self.parent is None:
            return False
        try:
            os.kill(self.parent, 0)  # signal 0: only asks whether the process exists
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False

    def requested(self):
        local = (self.path is not None and os.path.exists(self.path)) or self.parent_gone()
        if WORLD_SIZE == 1:
            return local
        flag = torch.tensor([1 if local else 0])
        dist.all_reduce(flag)  # every rank stops at the same batch, or DDP would wait forever
        return bool(flag.item())


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# Training.


def evaluate(model, loader, device, num_classes, channels_last):
    """Mean cross-entropy (unweighted), and the softmax probabilities in the loader's order."""
    model.eval()
    loss_sum, probabilities = 0.0, []
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            logits = model(images).float()
            labels = labels.to(device)
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            probabilities.append(torch.softmax(logits.double(), dim=1).cpu())
    all_probabilities = torch.cat(probabilities) if probabilities else torch.zeros(0, num_classes)
    return loss_sum / max(1, len(all_probabilities)), all_probabilities


def accuracies(probabilities, labels, num_classes):
    predicted = probabilities.argmax(dim=1)
    labels = torch.as_tensor(labels)
    recalls = [
        (predicted[labels == c] == c).double().mean().item() for c in range(num_classes) if (labels == c).any()
    ]
    return (predicted == labels).double().mean().item(), sum(recalls) / len(recalls)


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loader_workers(plan):
    if plan["loaderWorkers"] is not None:
        return plan["loaderWorkers"]
    return max(1, min(4, usable_cores() // WORLD_SIZE))


def use_cpu_cores():
    """Some builds (Debian's torch 1.13) start with one thread whatever the machine; use this process's share."""
    share = max(1, usable_cores() // WORLD_SIZE)
    if torch.get_num_threads() < share:
        torch.set_num_threads(share)


def train(plan, run_dir):
    files = {name: os.path.join(run_dir, file) for name, file in plan["files"].items()}
    t = plan["training"]
    distributed = WORLD_SIZE > 1
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(plan["device"], local_rank)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    # Mixed precision and channels-last pay off on CUDA tensor cores; on CPU and MPS they cost time or are missing.
    amp = device.type == "cuda" and plan["cuda"]["amp"]
    channels_last = device.type == "cuda" and plan["cuda"]["channelsLast"]
    if device.type == "cpu":
        use_cpu_cores()
    torch.manual_seed(t["seed"])

    emit({
        "type": "engine",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": sys.version.split()[0],
        "device": str(device),
        "deviceName": device_name(device),
        "processes": WORLD_SIZE,
        "amp": amp,
        "channelsLast": channels_last,
        "loaderWorkers": loader_workers(plan),
        "threads": torch.get_num_threads(),
    })

    model = build_model(plan, run_dir).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(plan, trainable)
    root, classes = plan["datasetRoot"], plan["classes"]
    examples, skipped = readable_examples(root, plan["examples"])
    plan["examples"] = examples  # predict_best and the predictions file cover the readable images only
    if RANK == 0:
        for entry in skipped:
            log(f"Skipped {entry['path']}: {entry['detail']}", "warning")
    if not examples["train"]:
        raise RuntimeError("none of the training images could be read")
    train_set = CellImages(root, examples["train"], plan, RandomCellAugmentation(plan["augment"]))
    per_process_batch = max(1, t["batchSize"] // WORLD_SIZE)  # the global batch stays the plan's
    drop_last = len(train_set) > t["batchSize"]
    sampler = (
        DistributedSampler(train_set, num_replicas=WORLD_SIZE, rank=RANK, shuffle=True, seed=t["seed"], drop_last=drop_last)
        if distributed
        else None
    )
    generator = torch.Generator()
    workers = loader_workers(plan)
    loader_options = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    train_loader = DataLoader(
        train_set,
        batch_size=per_process_batch,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        drop_last=drop_last,
        **loader_options,
    )
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * t["epochs"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: scheduled_factor(t["schedule"], step, total_steps)
    )
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    weights = torch.tensor(plan["classWeights"], dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weights)  # normalised by the weights, like leukemia-audit's engine

    history, best_epoch, best_loss, stale = [], None, math.inf, 0
    start_epoch = 1
    if plan["resume"] and os.path.exists(files["checkpoint"]):
        resume = load_checkpoint(files["checkpoint"], model, optimizer, scheduler)
        history, best_epoch, stale = resume["history"], resume["bestEpoch"], resume["stale"]
        best_loss = math.inf if resume["bestLoss"] is None else resume["bestLoss"]
        start_epoch = resume["epoch"] + 1
        emit({"type": "resumed", "epoch": resume["epoch"], "history": history})

    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if distributed else model
    evaluation_options = dict(batch_size=t["batchSize"], shuffle=False, **loader_options)
    val_loader = DataLoader(CellImages(root, examples["val"], plan), **evaluation_options) if examples["val"] else None
    cancel = CancelWatch(files["cancel"])
    metadata = {key: str(value) for key, value in plan["metadata"].items()}

    for epoch in range(start_epoch, t["epochs"] + 1):
        started = time.perf_counter()
        generator.manual_seed(t["seed"] * 1000 + epoch)  # the epoch's order and augmentation, also after a resume
        if sampler is not None:
            sampler.set_epoch(epoch)
        set_train_mode(model, t["strategy"])
        loss_sum, correct, seen = 0.0, 0, 0
        for batch, (images, labels) in enumerate(train_loader, start=1):
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            # torch 1.13's autocast knows only cuda and cpu; only CUDA uses it.
            with torch.autocast("cuda") if amp else contextlib.nullcontext():
                logits = net(images)
                loss = criterion(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
            elapsed = time.perf_counter() - started
            rate = seen * WORLD_SIZE / elapsed
            remaining = ((steps_per_epoch - batch) + (t["epochs"] - epoch) * steps_per_epoch) * t["batchSize"]
            emit({
                "type": "progress", "epoch": epoch, "epochs": t["epochs"], "batch": batch,
                "batches": steps_per_epoch, "loss": loss_sum / seen, "accuracy": correct / seen,
                "imagesPerSecond": rate, "etaSeconds": remaining / rate,
            })
            if cancel.requested():
                raise Cancelled()
        train_seconds = time.perf_counter() - started
        if distributed:  # the epoch's figures over all processes' shares
            totals = torch.tensor([loss_sum, float(correct), float(seen)], dtype=torch.float64)
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals[0].item(), int(totals[1].item()), int(totals[2].item())

        record = {
            "epoch": epoch, "trainLoss": loss_sum / max(1, seen), "trainAccuracy": correct / max(1, seen),
            "valLoss": None, "valAccuracy": None, "valBalancedAccuracy": None,
            "learningRate": last_learning_rate(scheduler),
            "seconds": 0.0, "imagesPerSecond": seen / train_seconds,
        }
        if RANK == 0:
            if val_loader is not None:
                record["valLoss"], probabilities = evaluate(model, val_loader, device, len(classes), channels_last)
                record["valAccuracy"], record["valBalancedAccuracy"] = accuracies(
                    probabilities, [label for _, label in examples["val"]], len(classes)
                )
            record["seconds"] = time.perf_counter() - started
            monitored = record["valLoss"] if record["valLoss"] is not None else record["trainLoss"]
            best = monitored < best_loss
            if best:
                best_loss, best_epoch, stale = monitored, epoch, 0
                write_safetensors(files["model"], model.state_dict(), metadata)
            else:
                stale += 1
            history.append(record)
            progress = {
                "epoch": epoch, "history": history, "bestEpoch": best_epoch,
                "bestLoss": None if math.isinf(best_loss) else best_loss, "stale": stale,
            }
            save_checkpoint(files["checkpoint"], model, optimizer, scheduler, progress)
            emit({"type": "epoch", "record": record, "best": best})
        stop = torch.tensor([1 if t["patience"] > 0 and stale >= t["patience"] and epoch < t["epochs"] else 0])
        if distributed:
            dist.broadcast(stop, src=0)  # rank 0 alone judged the epoch
        if stop.item():
            log(f"Stopping early: validation loss has not improved for {t['patience']} epochs.")
            break

    if RANK == 0:
        predict_best(plan, files, device, channels_last, skipped)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    emit({"type": "result", "bestEpoch": best_epoch, "epochs": len(history)})


def last_learning_rate(scheduler):
    """The rate the epoch's last step used (the scheduler has already moved on to the next step's)."""
    return scheduler.base_lrs[0] * scheduler.lr_lambdas[0](max(0, scheduler.last_epoch - 1))


def predict_best(plan, files, device, channels_last, skipped):
    """Probabilities of the best epoch's weights for the val and test lists, in plan order, and the images
    skipped as unreadable (not in those lists)."""
    model = torchvision.models.resnet18(num_classes=len(plan["classes"]))
    model.load_state_dict(read_safetensors(files["model"]))
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = {"skipped": skipped}
    for split in ("val", "test"):
        examples = plan["examples"][split]
        if not examples:
            out[split] = []
            continue
        emit({"type": "phase", "phase": "evaluate", "done": 0, "total": len(examples)})
        loader = DataLoader(
            CellImages(plan["datasetRoot"], examples, plan), batch_size=plan["training"]["batchSize"], shuffle=False,
            num_workers=loader_workers(plan),
        )
        _, probabilities = evaluate(model, loader, device, len(plan["classes"]), channels_last)
        out[split] = probabilities.tolist()
        emit({"type": "phase", "phase": "evaluate", "done": len(examples), "total": len(examples)})
    with open(files["predictions"] + ".tmp", "w") as file:
        json.dump(out, file)
    os.replace(files["predictions"] + ".tmp", files["predictions"])


# ---------------------------------------------------------------------------------------------------------
# Inference (evaluate, probe). leukemia-audit has loaded and normalised the weights (any checkpoint it reads)
# into a torchvision state dict, and preprocessed every image into its image cache: exactly S x S x 3 RGB bytes
# per file, the pixels its own engine feeds the network. Reading those bytes, rather than decoding and
# resizing again here, makes the input identical to the embedded engine's (PIL and leukemia-audit's decoders,
# and the two resizers, may differ by a level), so both engines' logits agree to float32 rounding.


class PreparedPixels(Dataset):
    def __init__(self, files, size, mean, std):
        self.files, self.size, self.mean, self.std = files, size, mean, std

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        with open(self.files[index], "rb") as file:
            raw = file.read()
        if len(raw) != self.size * self.size * 3:
            raise RuntimeError(f"{self.files[index]}: {len(raw)} bytes, expected {self.size}x{self.size}x3")
        pixels = np.frombuffer(raw, dtype=np.uint8).reshape(self.size, self.size, 3)
        return to_normalised_tensor(pixels, self.mean, self.std)


def inference_model(weights_file, output):
    """torchvision's resnet18 with the given state dict, strictly; for features the classifier is dropped."""
    state = read_safetensors(weights_file)
    model = torchvision.models.resnet18(num_classes=state["fc.weight"].shape[0])
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{weights_file} is not a ResNet-18 state_dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if output == "features":
        model.fc = nn.Identity()  # the 512 average-pooled activations, exactly
    return model.eval()


def infer(plan, work_dir):
    """Eval-mode outputs of every image, in plan order, into plan["files"]["output"] (safetensors, one F32
    tensor named after plan["output"]: "logits" [n, classes] or "features" [n, 512])."""
    files = {name: os.path.join(work_dir, file) for name, file in plan["files"].items()}
    device = choose_device(plan["device"], 0)
    if device.type == "cpu":
        use_cpu_cores()
    if device.type == "cuda":
        # Float32 throughout, no autocast: an evaluation is judged to the last digit against other runs, and
        # TF32 convolutions would move the logits by ~1e-3.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    images = plan["images"]
    # The bytes need no decoding: a worker process would cost more than it saves, except to overlap a GPU.
    workers = min(2, usable_cores()) if device.type == "cuda" else 0
    emit({
        "type": "engine", "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": sys.version.split()[0], "device": str(device), "deviceName": device_name(device),
        "processes": 1, "amp": False, "channelsLast": False, "loaderWorkers": workers,
        "threads": torch.get_num_threads(),
    })
    model = inference_model(files["weights"], plan["output"]).to(device)
    loader = DataLoader(
        PreparedPixels(images["files"], images["size"], plan["normalise"]["mean"], plan["normalise"]["std"]),
        batch_size=plan["batchSize"], shuffle=False, num_workers=workers, pin_memory=device.type == "cuda",
    )
    total = len(images["files"])
    outputs, done, started = [], 0, time.perf_counter()
    cancel = CancelWatch(None)
    with torch.no_grad():
        for batch in loader:
            outputs.append(model(batch.to(device, non_blocking=True)).float().cpu())
            done += len(batch)
            rate = done / (time.perf_counter() - started)
            emit({"type": "progress", "done": done, "total": total, "imagesPerSecond": rate, "etaSeconds": (total - done) / rate})
            if cancel.requested():
                raise Cancelled()
    width = outputs[0].shape[1] if outputs else 0
    result = torch.cat(outputs) if outputs else torch.zeros(0, width)
    write_safetensors(files["output"], {plan["output"]: result}, {"engine": "torch"})
    emit({"type": "result", "images": total})


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: train_resnet18.py PLAN.json")
    plan_path = os.path.abspath(sys.argv[1])
    with open(plan_path) as file:
        plan = json.load(file)
    kinds = {(PLAN_SCHEMA, PLAN_VERSION): train, (INFERENCE_SCHEMA, INFERENCE_VERSION): infer}
    run = kinds.get((plan.get("schema"), plan.get("version")))
    if run is None:
        raise SystemExit(
            f"{plan_path} is neither a version {PLAN_VERSION} {PLAN_SCHEMA} nor a version {INFERENCE_VERSION} "
            f"{INFERENCE_SCHEMA} file"
        )
    try:
        run(plan, os.path.dirname(plan_path))
    except Cancelled:
        emit({"type": "cancelled"})
    except RuntimeError as error:
        if "out of memory" in str(error):
            log("The device ran out of memory: lower --batch-size or --image-size.", "error")
        raise


if __name__ == "__main__":
    main()
