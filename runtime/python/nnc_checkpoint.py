#!/usr/bin/python3
"""Read nnc checkpoints (safetensors files) in Python with only NumPy; convert them for PyTorch.

Debian has no `safetensors` package; this module reads the format itself (an 8-byte little-endian
header length, a JSON header, then the raw little-endian tensors). It lives beside the runtime
that writes the files (runtime/state.c says what a checkpoint holds).

    import nnc_checkpoint as nc
    weights = nc.load("mlp.safetensors")            # {"dense0.weight": ndarray [256, 784], ...}
    mean, std = nc.standardization("reg.safetensors")   # or None: inputs were not standardized
    names = nc.labels("iris.safetensors")           # ["setosa", ...] for CSV labels given as names
    meta = nc.metadata("mlp.safetensors")           # {"epoch": "5", "best_val_loss": ..., ...}

    # PyTorch: nnc names tensors <layer>.<param>, with the layouts of nn.Linear, nn.Conv1d/2d,
    # nn.LayerNorm, nn.BatchNorm*d and nn.Embedding. `rename` maps nnc layer names to the module
    # paths of your torch model (an nn.Sequential numbers its children):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    net.load_state_dict(nc.torch_state_dict("mlp.safetensors",
                                            rename={"dense0": "1", "dense1": "3", "dense2": "5"}))

What is skipped: the optimizer's state (`optimizer.<state>.<param>`: momentum, adam_m, adam_v,
rmsprop_square_avg), the standardization statistics (`__standardize.mean/std`, see
standardization(): apply (x - mean) / std to inputs yourself) and early stopping's copy of the
best epoch's weights (`__best.<param>`, present while training may still go back to them; pass
best=True to get those weights under the plain names instead). read() returns everything.

For PyTorch's batchnorm, whose state_dict also holds `num_batches_tracked`, torch_state_dict adds
it to every layer that has running_mean and running_var, set to the checkpoint's optimizer step
count (the number of training batches, what PyTorch would have counted).

As a command: `nnc_checkpoint.py CKPT` lists tensors and metadata;
`nnc_checkpoint.py CKPT --torch OUT.pt [--rename nnc=torch ...]` writes torch.save(state_dict).
"""
import json
import struct
import sys

import numpy as np

# safetensors dtype names -> NumPy little-endian dtypes (nnc itself writes F32 only)
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}
SKIPPED_PREFIXES = ("optimizer.", "__standardize.", "__best.")


class CheckpointError(ValueError):
    """A file that is not a readable safetensors checkpoint; the message names file and place."""


def read(path):
    """Every tensor of a safetensors file as NumPy arrays (writable, in file order), and its
    metadata: returns (tensors, metadata), both dicts."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 8:
        raise CheckpointError(f"{path}: {len(data)} bytes, too short for a safetensors header "
                              "(8-byte length, then JSON); is it a checkpoint written by train --save?")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(f"{path}: the header length {n} is more than the {len(data) - 8} bytes "
                              "after it: the file is cut or not safetensors")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: the JSON header (bytes 8..{8 + n}) does not parse: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the JSON header is not an object")
    meta = header.pop("__metadata__", None) or {}
    base, size = 8 + n, len(data) - 8 - n
    tensors = {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor '{name}': the header entry needs dtype, shape and "
                                  "data_offsets") from None
        if dtype not in DTYPES:
            raise CheckpointError(f"{path}: tensor '{name}': dtype {dtype} is not supported "
                                  f"(supported: {', '.join(DTYPES)})")
        item = np.dtype(DTYPES[dtype]).itemsize
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= size) or end - begin != count * item:
            raise CheckpointError(f"{path}: tensor '{name}': data_offsets [{begin}, {end}] do not hold "
                                  f"{count} {dtype} values within the {size} data bytes")
        arr = np.frombuffer(data, dtype=DTYPES[dtype], count=count, offset=base + begin)
        tensors[name] = arr.reshape(shape)
    return tensors, meta


def metadata(path):
    """The checkpoint's metadata (strings): format, model, epoch, step, optimizer, best_val_loss..."""
    return read(path)[1]


def load(path, best=False):
    """The model's own tensors (weights and batchnorm buffers), without optimizer state,
    standardization statistics or early stopping's __best.* copy. best=True: where the file holds
    __best.<name> (the best validation epoch's weights), those are returned under <name>."""
    tensors, _ = read(path)
    out = {k: v for k, v in tensors.items() if not k.startswith(SKIPPED_PREFIXES)}
    if best:
        for k, v in tensors.items():
            if k.startswith("__best.") and k[7:] in out:
                out[k[7:]] = v
    return out


def standardization(path):
    """(mean, std) of the input features when training standardized them, else None: the model
    expects (x - mean) / std."""
    tensors, _ = read(path)
    if "__standardize.mean" not in tensors:
        return None
    return tensors["__standardize.mean"], tensors["__standardize.std"]


def labels(path):
    """The class names of a model trained on CSV labels given as names, in id order (id i is
    labels[i]; the probabilities of predict are in this order), else None: the ids are the
    labels themselves."""
    text = metadata(path).get("labels")
    return json.loads(text) if text else None


def rename_tensors(tensors, rename):
    """Replaces each tensor name's layer (everything before the last '.') by rename[layer] when
    it is there; '' drops the layer part. rename may also be a function of the full name."""
    if rename is None:
        return dict(tensors)
    out = {}
    for name, t in tensors.items():
        if callable(rename):
            new = rename(name)
        else:
            layer, _, param = name.rpartition(".")
            new = name if layer not in rename else (f"{rename[layer]}.{param}" if rename[layer] else param)
        if new in out:
            raise CheckpointError(f"rename: both '{name}' and another tensor become '{new}'")
        out[new] = t
    return out


def torch_state_dict(path, rename=None, best=False):
    """load(path) as torch tensors, renamed for your module, with num_batches_tracked added to
    batchnorm layers: ready for module.load_state_dict(..., strict=True)."""
    import torch  # only here: reading needs NumPy alone
    tensors = load(path, best=best)
    step = int(metadata(path).get("step", "0") or 0)
    for name in list(tensors):
        if name.endswith(".running_mean") and name[:-13] + ".running_var" in tensors:
            tensors[name[:-13] + ".num_batches_tracked"] = np.array(step, dtype=np.int64)
    # copies: aligned and owned, whatever the offsets in the file were
    return {k: torch.from_numpy(np.array(v)) for k, v in rename_tensors(tensors, rename).items()}


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="List an nnc checkpoint, or convert it for PyTorch.")
    ap.add_argument("checkpoint")
    ap.add_argument("--torch", metavar="OUT.pt", help="write torch.save(state_dict) of the model tensors")
    ap.add_argument("--rename", metavar="NNC=TORCH", action="append", default=[],
                    help="map an nnc layer name to a torch module path (repeatable)")
    ap.add_argument("--best", action="store_true", help="use early stopping's __best.* weights where present")
    args = ap.parse_args(argv)
    try:
        if args.torch:
            rename = {}
            for r in args.rename:
                if "=" not in r:
                    ap.error(f"--rename {r}: expected NNC=TORCH, e.g. --rename dense0=1")
                k, v = r.split("=", 1)
                rename[k] = v
            try:
                import torch
            except ImportError:
                print("error: --torch needs PyTorch (Debian: apt-get install python3-torch)", file=sys.stderr)
                return 1
            torch.save(torch_state_dict(args.checkpoint, rename, args.best), args.torch)
            return 0
        tensors, meta = read(args.checkpoint)
    except (OSError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for k, v in tensors.items():
        print(f"{k:48} {str(list(v.shape)):20} {v.dtype}")
    for k, v in meta.items():
        print(f"meta {k} = {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
