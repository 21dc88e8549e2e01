import * as ort from 'onnxruntime-node';
import { encodeOnnxModel, OnnxDataType, type OnnxTensor } from '../../src/export/onnx-proto.js';

async function probe(
  opset: number,
  codeType: OnnxDataType,
  Arr: typeof Int16Array | typeof Int32Array | typeof Int8Array,
) {
  const codes = new Arr([-255, 3, 255, 1, -1, 7, 9, -9]);
  const init: OnnxTensor[] = [
    { name: 'wq', dataType: codeType, dims: [2, 1, 2, 2], values: codes },
    { name: 'ws', dataType: OnnxDataType.FLOAT, dims: [2], values: new Float32Array([0.5, 0.25]) },
    { name: 'xs', dataType: OnnxDataType.FLOAT, dims: [], values: new Float32Array([0.1]) },
    { name: 'xz', dataType: OnnxDataType.UINT8, dims: [], values: new Uint8Array([0]) },
  ];
  const bytes = encodeOnnxModel({
    irVersion: opset >= 21 ? 10 : 7,
    opset,
    producerName: 'p',
    producerVersion: '0',
    graphName: 'g',
    nodes: [
      {
        opType: 'DequantizeLinear',
        name: 'dq',
        inputs: ['wq', 'ws'],
        outputs: ['w'],
        attributes: { axis: { kind: 'int', value: 0 } },
      },
      { opType: 'QuantizeLinear', name: 'q', inputs: ['x', 'xs', 'xz'], outputs: ['xq'] },
      { opType: 'DequantizeLinear', name: 'dqx', inputs: ['xq', 'xs', 'xz'], outputs: ['xd'] },
      {
        opType: 'Conv',
        name: 'c',
        inputs: ['xd', 'w'],
        outputs: ['y'],
        attributes: { kernel_shape: { kind: 'ints', value: [2, 2] } },
      },
    ],
    initializers: init,
    inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, shape: ['batch', 1, 2, 2] }],
    outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: ['batch', 2, 1, 1] }],
    metadata: { a: 'b' },
  });
  try {
    const s = await ort.InferenceSession.create(bytes);
    const r = await s.run({
      x: new ort.Tensor('float32', new Float32Array([1, 0.25, 0.35, 0.05]), [1, 1, 2, 2]),
    });
    console.log(opset, codeType, r.y.data);
  } catch (e) {
    console.log(opset, codeType, 'ERR', (e as Error).message);
  }
}
await probe(21, OnnxDataType.INT16, Int16Array);
await probe(13, OnnxDataType.INT32, Int32Array);
await probe(19, OnnxDataType.INT32, Int32Array);
await probe(13, OnnxDataType.INT16, Int16Array);
await probe(21, OnnxDataType.INT32, Int32Array);
console.log(ort.env.versions);
