"""PyTorch twin of bench/bench_gpt.c: same GPT shapes, AdamW, random tokens; prints tokens/s."""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
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


steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
m = GPT()
opt = torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=0.01)
for s in range(steps + 3):
    if s == 3:
        t0 = time.perf_counter()
    ids = torch.randint(0, V, (B, T + 1))
    loss = F.cross_entropy(m(ids[:, :-1]).reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
dt = time.perf_counter() - t0
print(f"peer_gpt threads={torch.get_num_threads()} params={sum(p.numel() for p in m.parameters())} "
      f"steps={steps} loss={loss.item():.4f} tokens/s={steps * B * T / dt:.0f}")
