"""PyTorch side of the Strata benchmarks: times one ResNet-20 training step (forward, backward,
SGD) on the same machine, optionally as a once-QAT step over several precisions with a simple
per-tensor fake quantizer. Prints one JSON line. Run with Debian's interpreter: /usr/bin/python3."""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bits, signed):
        levels = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
        s = x.detach().abs().max().clamp(min=1e-8) / levels
        lo = -levels - 1 if signed else 0
        return torch.clamp(torch.round(x / s), lo, levels) * s

    @staticmethod
    def backward(ctx, g):
        return g, None, None


class QConv(nn.Conv2d):
    bits = 32

    def forward(self, x):
        if self.bits < 32:
            x = FakeQuant.apply(x, self.bits, False)
            w = FakeQuant.apply(self.weight, self.bits, True)
        else:
            w = self.weight
        return F.conv2d(x, w, None, self.stride, self.padding)


class Block(nn.Module):
    def __init__(self, i, o, s, bits_list):
        super().__init__()
        self.c1 = QConv(i, o, 3, s, 1, bias=False)
        self.c2 = QConv(o, o, 3, 1, 1, bias=False)
        self.b1 = nn.ModuleDict({str(b): nn.BatchNorm2d(o) for b in bits_list})
        self.b2 = nn.ModuleDict({str(b): nn.BatchNorm2d(o) for b in bits_list})
        self.sc = None
        if s != 1 or i != o:
            self.sc = QConv(i, o, 1, s, 0, bias=False)
            self.sb = nn.ModuleDict({str(b): nn.BatchNorm2d(o) for b in bits_list})

    def forward(self, x, b):
        y = F.relu(self.b1[b](self.c1(x)))
        y = self.b2[b](self.c2(y))
        return F.relu(y + (x if self.sc is None else self.sb[b](self.sc(x))))


class ResNet20(nn.Module):
    def __init__(self, bits_list):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for w, s in [(16, 1), (32, 2), (64, 2)]:
            for k in range(3):
                blocks.append(Block(c, w, s if k == 0 else 1, bits_list))
                c = w
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(64, 10)

    def set_bits(self, b):
        for m in self.modules():
            if isinstance(m, QConv):
                m.bits = b

    def forward(self, x, b):
        x = F.relu(self.bn(self.stem(x)))
        for blk in self.blocks:
            x = blk(x, b)
        return self.fc(x.mean((2, 3)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--bits", type=str, default="32", help="comma list; 32 = full precision")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bits = [int(b) for b in a.bits.split(",")]
    m = ResNet20([str(b) for b in bits])
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    times = []
    for i in range(a.warmup + a.iters):
        t = time.perf_counter()
        opt.zero_grad()
        for b in bits:
            m.set_bits(b)
            F.cross_entropy(m(x, str(b)), y).backward()
        opt.step()
        if i >= a.warmup:
            times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"torch": torch.__version__, "median_ms": statistics.median(times), "times_ms": times}))


if __name__ == "__main__":
    main()
