"""peer_finetune — the PyTorch twin of bench/bench_finetune.c: MLP
784-1024-1024-10 fine-tuned in full (--lora 0) or through LoRA adapters of
rank R on its Linear layers with the base frozen (--lora R), written out as
PEFT computes it (y = base(x) + alpha/r * B(A(x)), no dropout) with PEFT's
parameter names (layers.N.base_layer.*, layers.N.lora_A/B.weight), so the
init file of the graft side loads by name."""
import torch.nn as nn

import peerlib as pl

LORA_ALPHA = 8


class LoraLinear(nn.Module):
    def __init__(self, base, r):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = LORA_ALPHA / r
        for p in base.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.base_layer(x) + self.scaling * self.lora_B(self.lora_A(x))


class MLP(nn.Module):
    def __init__(self, r):
        super().__init__()
        self.flatten = nn.Flatten()
        lin = [nn.Linear(784, 1024), nn.Linear(1024, 1024), nn.Linear(1024, 10)]
        if r > 0:
            lin = [LoraLinear(m, r) for m in lin]
        self.layers = nn.Sequential(lin[0], nn.ReLU(), lin[1], nn.ReLU(), lin[2])

    def forward(self, x):
        return self.layers(self.flatten(x))


def main():
    a = pl.parse_args(lambda p: p.add_argument("--lora", type=int, default=0))
    pl.run_model("lora" if a.lora > 0 else "ft", MLP(a.lora), a, (784,))


if __name__ == "__main__":
    main()
