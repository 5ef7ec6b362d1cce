"""PyTorch twin of bench/bench_gpt.c: same GPT shapes, AdamW, the same synthetic
sequences (each row counts up from a random start modulo V); one JSON line."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from peerlib import emit, parse_args, time_steps

V, BLOCK, L, H, C, B, T = 96, 64, 4, 4, 128, 8, 64


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.a_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.m_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.tril(torch.ones(BLOCK, BLOCK, dtype=torch.bool)))

    def forward(self, x):
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in self.c_attn(self.ln_1(x)).split(C, 2))
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(C // H)).masked_fill(~self.mask[:T, :T], float("-inf"))
        x = x + self.a_proj((att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.m_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(BLOCK, C)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()


def synth_batch():
    start = torch.randint(0, V, (B, 1))
    ids = (start + torch.arange(T + 1)) % V
    return ids[:, :-1], ids[:, 1:]


args = parse_args()
steps = min(args.steps or 30, 10) if args.quick else (args.steps or 30)
WARMUP = 3
m = GPT()
opt = torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=0.01)


def step(s):
    x, y = synth_batch()
    loss = F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


loss0 = step(0)
for s in range(1, WARMUP):
    step(s)
wall, cpu, loss = time_steps("gpt", step, WARMUP, steps)
emit({"bench": "gpt", "case": "train", "time_s": wall / steps, "cpu_s": cpu / steps,
      "items": B * T, "params": sum(p.numel() for p in m.parameters()), "loss0": loss0, "loss_final": loss,
      "steps": WARMUP + steps})
