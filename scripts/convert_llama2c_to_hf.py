#!/usr/bin/env python3
"""Convert a llama2.c .bin checkpoint into a Hugging Face LLaMA folder (config.json + safetensors).

    python3 -m scripts.convert_llama2c_to_hf stories260K.bin weights/stories260K-hf --dtype bfloat16 --shards 2
"""
import argparse
import sys


from cugraphllm.convert import convert_llama2c_to_hf
from cugraphllm.errors import CugraphError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="llama2.c legacy fp32 .bin file")
    ap.add_argument("out_dir", help="folder to write (created if absent)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                    help="storage dtype of the safetensors tensors (default float32)")
    ap.add_argument("--shards", type=int, default=1,
                    help="number of model-0000i-of-0000n.safetensors files (default 1: model.safetensors)")
    ap.add_argument("--untie", action="store_true",
                    help="write a separate lm_head.weight even when the model ties it to the embedding")
    ap.add_argument("--tokenizer", default=None,
                    help="sentencepiece .model to copy as tokenizer.model (default: the one beside the .bin)")
    args = ap.parse_args(argv)
    try:
        out = convert_llama2c_to_hf(args.checkpoint, args.out_dir, dtype=args.dtype, shards=args.shards,
                                    tie=False if args.untie else None, tokenizer=args.tokenizer)
    except CugraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
