"""A minimal gpt-fast-style LLaMA in PyTorch: the strongest plain-torch design for batch-1 decode.

Static KV cache allocated once, fused wqkv and w13, interleaved-pair RoPE from a precomputed (cos, sin) table,
attention over the whole static cache with a causal mask row picked by a device-side position tensor, so one
captured CUDA graph (torch.compile mode="reduce-overhead") serves every decode step. Prefill runs eagerly.
Used only by scripts/bench_peers.py; the cugraphllm package never imports torch.
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class KVCache(nn.Module):
    def __init__(self, max_seq: int, n_kv_heads: int, head_dim: int, dtype):
        super().__init__()
        shape = (1, n_kv_heads, max_seq, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype), persistent=False)

    def update(self, input_pos, k, v):
        # input_pos [M]; k, v [1, KVH, M, Dh]
        self.k_cache[:, :, input_pos] = k
        self.v_cache[:, :, input_pos] = v
        return self.k_cache, self.v_cache


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def apply_rope(x, cs):
    # x [1, M, heads, Dh]; cs [1, M, 1, Dh/2, 2] float32 (cos, sin); pairs (2i, 2i+1) rotate together
    xs = x.float().reshape(*x.shape[:-1], -1, 2)
    c, s = cs[..., 0], cs[..., 1]
    out = torch.stack([xs[..., 0] * c - xs[..., 1] * s, xs[..., 1] * c + xs[..., 0] * s], dim=-1)
    return out.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wqkv = nn.Linear(cfg.dim, cfg.qkv_dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x, cs, mask, input_pos):
        c, m = self.cfg, x.shape[1]
        q, k, v = self.wqkv(x).split([c.dim, c.kv_dim, c.kv_dim], dim=-1)
        q = apply_rope(q.view(1, m, c.n_heads, c.head_dim), cs).transpose(1, 2)
        k = apply_rope(k.view(1, m, c.n_kv_heads, c.head_dim), cs).transpose(1, 2)
        v = v.view(1, m, c.n_kv_heads, c.head_dim).transpose(1, 2)
        k, v = self.kv_cache.update(input_pos, k, v)
        if c.n_rep > 1:
            k, v = k.repeat_interleave(c.n_rep, dim=1), v.repeat_interleave(c.n_rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0)
        return self.wo(y.transpose(1, 2).reshape(1, m, c.dim))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x):
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cs, mask, input_pos):
        h = x + self.attention(self.attention_norm(x), cs, mask, input_pos)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """cfg: a cugraphllm ModelConfig (plain sizes)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)

    def setup_caches(self, max_seq: int):
        c, dev, dt = self.cfg, self.output.weight.device, self.output.weight.dtype
        for layer in self.layers:
            layer.attention.kv_cache = KVCache(max_seq, c.n_kv_heads, c.head_dim, dt).to(dev)
        self.register_buffer("causal_mask", torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool, device=dev)),
                             persistent=False)
        inv = c.rope_theta ** (-torch.arange(0, c.head_dim, 2, dtype=torch.float64, device=dev) / c.head_dim)
        ang = torch.arange(max_seq, dtype=torch.float64, device=dev)[:, None] * inv[None]
        self.register_buffer("rope_cs", torch.stack([ang.cos(), ang.sin()], -1).float(), persistent=False)

    def forward(self, idx, input_pos):
        # idx [1, M] int64; input_pos [M] int64 absolute positions
        mask = self.causal_mask[None, None, input_pos]          # [1, 1, M, S]
        cs = self.rope_cs[input_pos][None, :, None]              # [1, M, 1, Dh/2, 2]
        x = self.tok_embeddings(idx)
        for layer in self.layers:
            x = layer(x, cs, mask, input_pos)
        return self.output(self.norm(x))


def decode_one_token(model, cur, input_pos):
    # cur [1, 1] int64, input_pos [1] int64 on the device -> next token [1, 1]
    logits = model(cur, input_pos)
    return logits[:, -1].argmax(dim=-1, keepdim=True)


def prefill(model, prompt, input_pos):
    # prompt [1, L] int64, input_pos [L] -> first token [1, 1]
    return model(prompt, input_pos)[:, -1].argmax(dim=-1, keepdim=True)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class GptFastRunner:
    """Drives prefill (eager) + compiled decode for exactly n tokens; host clock, sync per token."""

    def __init__(self, cfg, max_seq: int, compile_decode: bool = True, compile_prefill: bool = False, seed: int = 0,
                 device: str = "cuda"):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float16)  # initialize in fp16 directly: no fp32 copy of 7B on the GPU
        try:
            with torch.device(device):
                self.model = Transformer(cfg).eval()
                self.model.setup_caches(max_seq)
        finally:
            torch.set_default_dtype(torch.float32)
        self.decode, self.compiled = decode_one_token, compile_decode
        if compile_decode:
            self.decode = torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True)
        # gpt-fast's --compile_prefill: one dynamic-shape compile serves every prompt length (no CUDA graph)
        self.prefill = torch.compile(prefill, fullgraph=True, dynamic=True) if compile_prefill else prefill

    @torch.inference_mode()
    def run(self, prompt, n: int):
        """prompt: int64 [1, L] on the GPU. Returns (ttft_s, [n-1 inter-token intervals in s])."""
        L = prompt.shape[1]
        _sync(prompt.device)
        t0 = time.perf_counter()
        tok = self.prefill(self.model, prompt, torch.arange(L, device=prompt.device))
        tok.item()  # the host has the first token
        times = [time.perf_counter()]
        pos = torch.tensor([L], device=prompt.device, dtype=torch.int64)  # device-side position
        for _ in range(n - 1):
            if self.compiled:
                torch.compiler.cudagraph_mark_step_begin()
            tok = self.decode(self.model, tok, pos).clone()
            tok.item()
            times.append(time.perf_counter())
            pos += 1
        return times[0] - t0, [b - a for a, b in zip(times, times[1:])]
