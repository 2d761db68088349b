#!/usr/bin/python3
"""The PyTorch peer for bench_train: the same Llama-family model, loss and AdamW step in
PyTorch (Debian's python3-torch), timed per optimizer update. Prints one JSON object.

Same math as ane-train: RMSNorm (eps 1e-5), interleaved RoPE, causal GQA attention,
SwiGLU, residual scale alpha, tied embedding, mean cross-entropy, AdamW with weight decay on
matrices and the embedding only, global-norm clipping at 1.0.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class Model(torch.nn.Module):
    def __init__(self, dim, hidden, heads, kv_heads, head_dim, layers, vocab, seq, theta=10000.0):
        super().__init__()
        self.dim, self.heads, self.kv_heads, self.hd = dim, heads, kv_heads, head_dim
        self.alpha = 1.0 / math.sqrt(2 * layers)
        self.embed = torch.nn.Parameter(torch.empty(vocab, dim).uniform_(-0.02, 0.02))
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            l = torch.nn.Module()
            l.wq = torch.nn.Linear(dim, heads * head_dim, bias=False)
            l.wk = torch.nn.Linear(dim, kv_heads * head_dim, bias=False)
            l.wv = torch.nn.Linear(dim, kv_heads * head_dim, bias=False)
            l.wo = torch.nn.Linear(heads * head_dim, dim, bias=False)
            l.w1 = torch.nn.Linear(dim, hidden, bias=False)
            l.w2 = torch.nn.Linear(hidden, dim, bias=False)
            l.w3 = torch.nn.Linear(dim, hidden, bias=False)
            l.rms_att = torch.nn.Parameter(torch.ones(dim))
            l.rms_ffn = torch.nn.Parameter(torch.ones(dim))
            self.layers.append(l)
        self.rms_final = torch.nn.Parameter(torch.ones(dim))
        freq = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
        ang = torch.outer(torch.arange(seq).float(), freq)
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

    @staticmethod
    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x):  # x [B, S, H, hd], interleaved pairs
        x0, x1 = x[..., 0::2], x[..., 1::2]
        c, s = self.cos[: x.shape[1], None, :], self.sin[: x.shape[1], None, :]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    def forward(self, tokens, targets):
        B, S = tokens.shape
        x = self.embed[tokens]
        r = self.heads // self.kv_heads
        for l in self.layers:
            a = self.rmsnorm(x, l.rms_att)
            q = self.rope(l.wq(a).view(B, S, self.heads, self.hd)).transpose(1, 2)
            k = self.rope(l.wk(a).view(B, S, self.kv_heads, self.hd)).transpose(1, 2)
            v = l.wv(a).view(B, S, self.kv_heads, self.hd).transpose(1, 2)
            k = k.repeat_interleave(r, dim=1)
            v = v.repeat_interleave(r, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + self.mask[:S, :S]
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, S, -1)
            x = x + self.alpha * l.wo(o)
            f = self.rmsnorm(x, l.rms_ffn)
            x = x + self.alpha * l.w2(F.silu(l.w1(f)) * l.w3(f))
        logits = self.rmsnorm(x, self.rms_final) @ self.embed.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    for name, default in [("dim", 512), ("hidden", 1408), ("heads", 8), ("kv_heads", 2), ("head_dim", 64),
                          ("layers", 4), ("vocab", 16893), ("seq", 128), ("batch", 8), ("threads", 2),
                          ("steps", 10), ("warmup_steps", 3)]:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    m = Model(a.dim, a.hidden, a.heads, a.kv_heads, a.head_dim, a.layers, a.vocab, a.seq)
    decay = [p for n, p in m.named_parameters() if "rms" not in n]
    no_decay = [p for n, p in m.named_parameters() if "rms" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    times = []
    for step in range(a.warmup_steps + a.steps):
        tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
        t0 = time.perf_counter()
        loss = m(tokens[:, :-1], tokens[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if step >= a.warmup_steps:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "seconds_per_step": median,
                      "tokens_per_second": a.batch * a.seq / median, "loss": float(loss)}))


if __name__ == "__main__":
    main()
