"""The model side of a bench document (bench.py, which imports these under its old private names): the model
entry and the GB/s that quantized weights reach per result row."""
from __future__ import annotations

from .config import PREFILL_ROWS_DEFAULT


def quant_gbps(rows, config, floor: dict, itemsize: int, new: int) -> list[dict]:
    """GB/s of quantized weights: the bytes their format reads per token (decode_floor) plus the KV cache."""
    if floor["format"] == "16-bit":
        return rows
    for r in rows:
        if r.get("tpot_ms"):
            kv = 2 * config.n_layers * (r["prompt_len"] + new / 2) * config.kv_dim * itemsize
            r["gbps"] = (floor["bytes_per_token"] + kv) / (r["tpot_ms"] * 1e-3) / 1e9
    return rows


def model_entry(args, config, name: str, backend: str, floor: dict, itemsize: int) -> dict:
    """The document's model entry: name, dtype, weight bytes (per GPU too under --tp), the decode floor, --quant
    and a --prefill-rows other than the default."""
    model = {"name": name, "dtype": args.dtype if backend == "cuda" else "float32",
             "weight_bytes": config.n_params() * itemsize if floor["format"] == "16-bit" else floor["device_bytes"],
             "decode_floor": floor,
             "quant": None if args.quant is None else {"format": args.quant, "group_size": args.group_size,
                                                       "quant_head": args.quant_head}}
    if args.tp > 1:  # what each GPU streams per token: the floor of a TP step
        from .gpu.tp_engine import check_split, local_config, shard_bytes
        model["weight_bytes_per_gpu"] = shard_bytes(config, local_config(config, check_split(config, args.tp)[0]),
                                                  itemsize, args.quant, args.group_size, args.quant_head)
        model["tp"] = args.tp
    if args.prefill_rows != PREFILL_ROWS_DEFAULT:  # the chunk of long prompts
        model["prefill_rows"] = args.prefill_rows
    return model
