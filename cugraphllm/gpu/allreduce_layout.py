"""The layout of the custom all-reduce buffers and calls (gpu/allreduce.py), pure Python: the constants the kernels
get as defines, which block handles which chunk, where each rank's slot lies, and the lamport call / generation
rule. tests/test_allreduce_cpu.py and tests/lamport_model.py model-check the protocols with these functions."""
from __future__ import annotations

THREADS, CHUNK = 256, 1024            # a block of 256 threads owns 1024 elements (one float4 per thread)
MAX_BLOCKS, MAX_WORLD = 64, 8
CAP = CHUNK * MAX_BLOCKS               # elements per rank of the largest custom message (65536 f32 = 256 KiB)
# lamport: generations of the receive buffers, the call counter's wrap (a multiple of 3), the empty bit pattern
GENERATIONS, SEQ_WRAP, EMPTY = 3, 3 << 30, 0xFFFFFFFF
# lamport above CAP: blocks of a call (default; fixed per PeerBuffers) and the most allowed (seq u32 [SEQ_BLOCKS])
WIDE_BLOCKS, SEQ_BLOCKS, WIDE_KERNEL = 128, 1024, "ar_lamport_wide"
# protocol -> (source, all-reduce / all-gather kernel, fused residual kernel, slots per source: parities or gens)
PROTOCOLS = {"custom": ("allreduce.cu", "ar_oneshot", "ar_residual", 2),
             "lamport": ("allreduce_lamport.cu", "ar_lamport", "ar_lamport_residual", GENERATIONS)}

def blocks_for(n: int) -> int:
    """Blocks of a call over n elements per rank: block b owns [b * CHUNK, (b + 1) * CHUNK) of every slot."""
    if not 0 < n <= CAP:
        raise ValueError(f"custom all-reduce: {n} elements per rank, expected 1..{CAP}")
    return -(-n // CHUNK)


def peer_cap(protocol: str, n: int = CAP) -> int:
    """Elements per slot, and per rank of the largest all-reduce, of a protocol's buffers sized for messages of n:
    lamport max(CAP, n) in whole chunks (every element of a covered chunk lies inside its slot); custom CAP."""
    return max(CAP, -(-n // CHUNK) * CHUNK) if protocol == "lamport" else CAP


def lamport_chunks(n: int, cap: int = CAP, wide: int = WIDE_BLOCKS, small: int = MAX_BLOCKS) -> list:
    """The chunks (ranges) each block of a lamport all-reduce of n elements per rank handles, in order. Up to small
    chunks (CAP): block b chunk b (ar_lamport). Above: min(wide, chunks) blocks, block b chunks b, b + wide, ...
    (ar_lamport_wide). wide >= small is fixed per PeerBuffers, so chunk c belongs to block c % wide in every call
    and seq[c % wide] numbers every call that touches its slots; a block's first chunk (c < wide) is reset ahead as
    in decode, its later ones after they are read (kernels/allreduce_lamport.cu, "Messages above")."""
    chunks = -(-n // CHUNK)
    if not 0 < n <= cap or wide < small:
        raise ValueError(f"lamport all-reduce: {n} elements per rank (at most {cap}), {wide} blocks (>= {small})")
    if chunks <= small:
        return [range(b, b + 1) for b in range(chunks)]
    return [range(b, chunks, wide) for b in range(min(wide, chunks))]


def slot_offset(parity: int, src: int, world: int, cap: int = CAP) -> int:
    """Element offset in a rank's data buffer of the slot that rank `src` pushes into at this parity (custom) or
    generation (lamport)."""
    return (parity * world + src) * cap


def lamport_call(seq: int) -> tuple[int, int, int]:
    """A lamport block's call after `seq` calls: (s, the generation it pushes into and polls, the generation it resets
    to EMPTY). s counts modulo SEQ_WRAP, a multiple of 3, so the generation steps by one across the wrap."""
    s = (seq + 1) % SEQ_WRAP
    return s, s % GENERATIONS, (s + 2) % GENERATIONS


def flag_index(block: int, src: int) -> int:
    """Index in a rank's flags of the word that block `block` of rank `src` writes its sequence number into."""
    return block * MAX_WORLD + src


def buffer_bytes(world: int, protocol: str = "custom", n: int = CAP) -> int:
    """Device bytes per rank for messages of up to n elements: custom: data f32 [2, world, CAP], flags u32
    [MAX_BLOCKS, MAX_WORLD], seq u32 [MAX_BLOCKS]; lamport: data f32 [3, world, peer_cap(n)], seq u32 [SEQ_BLOCKS]."""
    custom = protocol == "custom"
    words = PROTOCOLS[protocol][3] * world * peer_cap(protocol, n)
    return 4 * (words + (MAX_BLOCKS * (MAX_WORLD + 1) if custom else SEQ_BLOCKS))
