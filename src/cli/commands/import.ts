import { basename } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { noGrad } from '../../engine/autograd.js';
import { scope } from '../../engine/memory.js';
import { Random } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { nhwcToNchw } from '../../export/onnx-export.js';
import { buildImported, importOnnx, type ImportedModel } from '../../export/onnx-import.js';
import { readFileSync } from 'node:fs';
import { formatBytes } from '../../report/index.js';
import { loadOrt } from '../../runtime/session.js';
import { saveCheckpoint } from '../../train/checkpoint.js';
import { DATASETS, resolveTrainConfig, type DatasetName } from '../../train/config.js';
import { println, processIo, type CliIo } from '../io.js';

interface ImportFlags {
  output?: string;
  dataset?: string;
  dataPath?: string;
  classes?: string;
  mean?: number[];
  std?: number[];
  inputSize?: [number, number];
  verify: boolean;
}

function numberList(text: string): number[] {
  const values = text.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v)))
    throw new InvalidArgumentError(`Expected numbers such as 0.5,0.5,0.5 but received '${text}'`);
  return values;
}

function inputSize(text: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(text);
  if (m === null)
    throw new InvalidArgumentError(`Expected HxW or a side, e.g. 32x32 or 224, but received '${text}'`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

/** Training-checkpoint content for an imported network: full precision ('fp'), epoch 0. */
export function importedCheckpoint(
  imported: ImportedModel,
  options: { dataset: DatasetName; dataPath?: string; source: string },
) {
  const config = resolveTrainConfig(
    {
      model: 'imported',
      dataset: options.dataset,
      mode: 'fp',
      ...(options.dataPath !== undefined ? { dataPath: options.dataPath } : {}),
      ...(imported.mean !== null && imported.std !== null ? { mean: imported.mean, std: imported.std } : {}),
      ...(imported.inputSize[0] === imported.inputSize[1] ? { imageSize: imported.inputSize[0] } : {}),
    },
    `import of ${options.source}`,
  );
  const arrays = new Map<string, Float32Array>();
  for (const [name, value] of imported.state) arrays.set(`model.${name}`, value);
  return {
    meta: {
      kind: 'strata-training',
      config,
      architecture: imported.architecture,
      quant: null,
      classes: imported.classes,
      epoch: 0,
      batch: 0,
      history: [],
      wallSeconds: 0,
      imported: {
        from: basename(options.source),
        opset: imported.opset,
        producer: imported.producer,
        inputSize: imported.inputSize,
      },
    },
    arrays,
  };
}

/** Largest |Strata - onnxruntime| over the largest |onnxruntime| logit, on a seeded random batch. */
export async function compareWithOnnxRuntime(bytes: Uint8Array, imported: ImportedModel): Promise<number> {
  const ort = await loadOrt();
  const [h, w] = imported.inputSize;
  const c = imported.architecture.inChannels;
  const shape = [2, h, w, c];
  const x = new Float32Array(2 * h * w * c);
  const random = new Random(14);
  for (let i = 0; i < x.length; i++) x[i] = random.normal();
  const ours = noGrad(() =>
    scope(() => Float32Array.from(buildImported(imported).forward(new Tensor(x, shape)).data)),
  );
  const session = await ort.InferenceSession.create(bytes);
  try {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', nhwcToNchw(x, shape), [2, c, h, w]) };
    const out = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < out.length; i++) {
      scale = Math.max(scale, Math.abs(out[i]));
      diff = Math.max(diff, Math.abs(out[i] - ours[i]));
    }
    return diff / Math.max(scale, 1e-12);
  } finally {
    await session.release();
  }
}

export function importCommand(io: CliIo = processIo): Command {
  return new Command('import')
    .description(
      'Import a trained float ONNX model as a full-precision Strata checkpoint (then train, pack or export it)',
    )
    .argument('<model.onnx>', 'an ONNX float model, opsets 11 to 21')
    .option('-o, --output <file>', 'checkpoint to write (default: the model path with .ckpt)')
    .option(
      '--dataset <name>',
      `dataset it was trained on (${DATASETS.join(', ')}; default: its strata.dataset metadata)`,
    )
    .option('--data-path <path>', 'folder or archive holding the dataset')
    .option('--classes <list>', 'class names, comma-separated (default: its strata.classes metadata)')
    .option(
      '--mean <list>',
      'per-channel input mean on the 0..1 scale (default: its strata.mean metadata)',
      numberList,
    )
    .option('--std <list>', 'per-channel input std (default: its strata.std metadata)', numberList)
    .option('--input-size <HxW>', 'input size when the model leaves it symbolic', inputSize)
    .option('--no-verify', 'skip comparing the imported network with onnxruntime on a random batch')
    .action(async (path: string, flags: ImportFlags) => {
      const bytes = readFileSync(path);
      const imported = importOnnx(bytes, {
        source: path,
        ...(flags.classes !== undefined ? { classes: flags.classes.split(',') } : {}),
        ...(flags.mean !== undefined ? { mean: flags.mean } : {}),
        ...(flags.std !== undefined ? { std: flags.std } : {}),
        ...(flags.inputSize !== undefined ? { inputSize: flags.inputSize } : {}),
      });
      const dataset = flags.dataset ?? imported.dataset;
      if (dataset === null) {
        throw new RangeError(
          `${path}: name the dataset it was trained on with --dataset (${DATASETS.join(', ')}); the model has no strata.dataset metadata`,
        );
      }
      const content = importedCheckpoint(imported, {
        dataset: dataset as DatasetName,
        source: path,
        ...(flags.dataPath !== undefined ? { dataPath: flags.dataPath } : {}),
      });
      const output = flags.output ?? (path.endsWith('.onnx') ? `${path.slice(0, -5)}.ckpt` : `${path}.ckpt`);
      saveCheckpoint(output, content);
      const ops = imported.architecture.graph.ops;
      const count = (kind: string) => ops.filter((o) => o.op === kind).length;
      const params = [...imported.state.values()].reduce((n, a) => n + a.length, 0);
      const write = (line = '') => println(io.out, line);
      write(
        `${path}: opset ${imported.opset}${imported.producer ? `, from ${imported.producer}` : ''}; ` +
          `${ops.length} ops (${count('conv')} conv, ${count('linear')} linear, ${count('batchnorm')} batch norm)`,
      );
      write(
        `input ${imported.architecture.inChannels}x${imported.inputSize.join('x')}, ${imported.classes.length} classes, ` +
          `${params.toLocaleString('en-US')} values; dataset ${dataset}` +
          (imported.mean !== null
            ? `, mean [${imported.mean.join(', ')}], std [${imported.std!.join(', ')}]`
            : ''),
      );
      if (flags.verify) {
        const rel = await compareWithOnnxRuntime(bytes, imported);
        write(
          `onnxruntime check (random batch of 2): largest logit difference ${rel.toExponential(2)} of the largest logit`,
        );
        if (!(rel < 1e-4))
          throw new RangeError(`${path}: the imported network differs from onnxruntime by ${rel} (relative)`);
      }
      write(`${output}: ${formatBytes(readFileSync(output).length)} full-precision checkpoint`);
    });
}
