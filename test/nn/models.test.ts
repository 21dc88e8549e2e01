import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward, noGrad } from '../../src/engine/autograd.js';
import { scope } from '../../src/engine/memory.js';
import { softmaxCrossEntropy } from '../../src/engine/ops.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { manualSeed } from '../../src/nn/init.js';
import { Conv2d } from '../../src/nn/conv.js';
import { Linear } from '../../src/nn/linear.js';
import { createModel, MODEL_NAMES } from '../../src/nn/models/index.js';
import { SGD } from '../../src/train/optim.js';

test('parameter counts match the published architectures', () => {
  // torchvision: resnet18 11,689,512; mobilenet_v2 3,504,872 (1000 classes).
  assert.equal(
    createModel({ name: 'resnet18', numClasses: 1000, inChannels: 3 }).parameterCount(),
    11_689_512,
  );
  assert.equal(
    createModel({ name: 'mobilenetv2', numClasses: 1000, inChannels: 3 }).parameterCount(),
    3_504_872,
  );
  // ResNet-20 with 1x1 projection shortcuts: 0.27M.
  const r20 = createModel({ name: 'resnet20', numClasses: 10, inChannels: 3 }).parameterCount();
  assert.ok(r20 > 270_000 && r20 < 280_000, `resnet20 has ${r20} parameters`);
});

test('every model maps a batch to class logits at its input resolution', () => {
  const rng = new Random(0);
  const cases: [string, number[], number][] = [
    ['small-cnn', [2, 28, 28, 1], 10],
    ['resnet20', [2, 32, 32, 3], 10],
    ['resnet32', [1, 32, 32, 3], 10],
    ['resnet56', [1, 32, 32, 3], 100],
    ['resnet18', [1, 64, 64, 3], 200],
    ['resnet18', [1, 40, 56, 3], 7],
    ['mobilenetv2', [1, 32, 32, 3], 10],
  ];
  assert.equal(new Set(cases.map((c) => c[0])).size, MODEL_NAMES.length);
  for (const [name, shape, classes] of cases) {
    const model = createModel({ name: name as never, numClasses: classes, inChannels: shape[3] }).eval();
    const y = noGrad(() => scope(() => model.forward(Tensor.randn(shape, rng))));
    assert.deepEqual([...y.shape], [shape[0], classes], name);
    assert.ok(y.data.every(Number.isFinite), `${name} produced non-finite logits`);
  }
});

test('every convolution and linear layer can be found and replaced by a wrapper', () => {
  const model = createModel({ name: 'resnet20', numClasses: 10, inChannels: 3 });
  const layers = model.namedModules().filter(([, m]) => m instanceof Conv2d || m instanceof Linear);
  assert.equal(layers.length, 19 + 2 + 1); // 19 3x3 convs + 2 projection shortcuts + fc
  const names = model.stateDict();
  assert.ok(names.has('layers.3.shortcut.0.weight'));
  assert.ok(names.has('layers.0.bn1.runningMean'));
});

test('a tiny training run drives the loss down', () => {
  manualSeed(3);
  const rng = new Random(3);
  // Class = which image quadrant is bright: learnable, not trivially linear in raw pixels.
  const n = 64;
  const x = Tensor.zeros([n, 12, 12, 1]);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    for (let h = 0; h < 12; h++)
      for (let w = 0; w < 12; w++) {
        const inQuadrant = h < 6 === c < 2 && w < 6 === (c % 2 === 0);
        x.data[(i * 12 + h) * 12 + w] = (inQuadrant ? 1 : 0) + 0.3 * rng.normal();
      }
  }
  const model = createModel({ name: 'small-cnn', numClasses: 4, inChannels: 1, width: 8 });
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const losses: number[] = [];
  for (let step = 0; step < 25; step++) {
    opt.zeroGrad();
    losses.push(
      scope(() => {
        const loss = softmaxCrossEntropy(model.forward(x), labels);
        backward(loss);
        return loss.item();
      }),
    );
    opt.step();
  }
  assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss went from ${losses[0]} to ${losses.at(-1)}`);
});

test('state dicts round-trip and refuse mismatched shapes by name', () => {
  const a = createModel({ name: 'small-cnn', numClasses: 10, inChannels: 1 });
  const b = createModel({ name: 'small-cnn', numClasses: 10, inChannels: 1 });
  b.loadStateDict(a.stateDict());
  for (const [k, v] of a.stateDict()) assert.deepEqual(b.stateDict().get(k)!.data, v.data, k);
  const c = createModel({ name: 'small-cnn', numClasses: 5, inChannels: 1 });
  assert.throws(
    () => c.loadStateDict(a.stateDict()),
    /'fc.weight' has \[10, 64\] but the model expects \[5, 64\]/,
  );
  assert.throws(
    () => createModel({ name: 'resnet21' as never, numClasses: 1, inChannels: 1 }),
    /for model but received 'resnet21'/,
  );
});
