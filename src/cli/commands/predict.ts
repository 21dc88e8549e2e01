import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { decodeImage } from '../../data/image-decode.js';
import { StrataFormatError, inspectStrata } from '../../format/index.js';
import { formatTable } from '../../report/index.js';
import { SESSION_ENGINES, StrataSession, type SessionEngine } from '../../runtime/session.js';
import { imageToInput, inputSpecFor, toChannels, topClasses, type InputSpec } from '../../web/preprocess.js';
import { println, processIo, type CliIo } from '../io.js';
import { parsePositiveInteger } from '../parse.js';
import { restoreModel } from '../restore.js';
import { checkBitsInFile } from './extract.js';
import { detectFileKind } from './info.js';
import { datasetInput, packRestored } from './pack.js';

interface PredictFlags {
  bits?: number;
  engine: SessionEngine;
  top: number;
  json?: boolean;
}

interface Prepared {
  session: StrataSession;
  spec: InputSpec;
  labels: string[] | null;
  bits: number | null;
}

async function prepare(path: string, flags: PredictFlags): Promise<Prepared> {
  const threads = 1;
  if (detectFileKind(path) === 'checkpoint') {
    const restored = restoreModel(path);
    const { architecture, meta } = restored;
    const described = datasetInput(meta.config);
    const spec = inputSpecFor(architecture as unknown as Record<string, unknown>, described, path);
    if (restored.quant === null) {
      if (flags.bits !== undefined) {
        throw new RangeError(
          `checkpoint ${path} holds a full-precision model; it has no ${flags.bits}-bit version`,
        );
      }
      const session = await StrataSession.create(restored.model, {
        bits: null,
        engine: flags.engine,
        threads,
      });
      return { session, spec, labels: meta.classes, bits: null };
    }
    const bytes = packRestored(restored, path);
    if (flags.bits !== undefined) checkBitsInFile(path, bytes, flags.bits);
    const bits = flags.bits ?? meta.config.bits[0];
    const session = await StrataSession.create(bytes, { bits, engine: flags.engine, threads });
    return { session, spec, labels: meta.classes, bits };
  }
  const bytes = new Uint8Array(await readFile(path));
  let info;
  try {
    info = inspectStrata(bytes);
  } catch (e) {
    if (e instanceof StrataFormatError) throw new StrataFormatError(e.code, `${path}: ${e.message}`);
    throw e;
  }
  if (flags.bits !== undefined) checkBitsInFile(path, bytes, flags.bits);
  // Created from the path, so that a refusal names the file.
  const session = await StrataSession.create(path, {
    ...(flags.bits !== undefined ? { bits: flags.bits } : {}),
    engine: flags.engine,
    threads,
  });
  const classes = info.metadata?.classes;
  const labels =
    Array.isArray(classes) && classes.every((c) => typeof c === 'string') ? (classes as string[]) : null;
  return {
    session,
    spec: inputSpecFor(info.architecture, info.metadata, path),
    labels,
    bits: session.bits ?? null,
  };
}

/** Decodes, resizes and normalises each image as the model's training run did; one batch. */
export async function loadImages(paths: readonly string[], spec: InputSpec): Promise<Float32Array> {
  const per = spec.height * spec.width * spec.channels;
  const batch = new Float32Array(paths.length * per);
  for (let i = 0; i < paths.length; i++) {
    const rgb = decodeImage(new Uint8Array(await readFile(paths[i])), paths[i]);
    const image = toChannels(rgb.data, rgb.height, rgb.width, 3, spec.channels);
    batch.set(imageToInput(image, spec, paths[i]), i * per);
  }
  return batch;
}

export function predictCommand(io: CliIo = processIo): Command {
  return new Command('predict')
    .description('Classify images with one precision of a .strata file (or a checkpoint)')
    .argument('<model>', 'a .strata model file or a training checkpoint')
    .argument('<images...>', 'JPEG or PNG files')
    .option('--bits <b>', 'the precision to run (default: the highest the file holds)', parsePositiveInteger)
    .addOption(
      new Option('--engine <engine>', 'onnxruntime (exported ONNX graph) or native (Strata engine)')
        .choices([...SESSION_ENGINES])
        .default('onnxruntime'),
    )
    .option('--top <k>', 'how many classes to print per image', parsePositiveInteger, 5)
    .option('--json', 'print one JSON object per image instead of tables')
    .action(async (path: string, images: string[], flags: PredictFlags) => {
      const { session, spec, labels, bits } = await prepare(path, flags);
      try {
        if (spec.normalizeSource === 'default') {
          println(io.err, `warning: ${path} records no input normalisation; using pixel / 255`);
        }
        const data = await loadImages(images, spec);
        const p = await session.predict({
          data,
          shape: [images.length, spec.height, spec.width, spec.channels],
        });
        const write = (line = '') => println(io.out, line);
        const precision = bits === null ? 'full precision' : `${bits} bits`;
        images.forEach((image, n) => {
          const probs = p.probabilities.subarray(n * p.numClasses, (n + 1) * p.numClasses);
          const top = topClasses(probs, flags.top, labels ?? undefined);
          if (flags.json) {
            write(JSON.stringify({ image, bits, engine: flags.engine, top }));
            return;
          }
          if (n > 0) write();
          write(`${image}: ${top[0].label} (${precision}, ${flags.engine})`);
          write(
            formatTable(
              [
                { header: 'rank', align: 'right' },
                { header: 'class' },
                { header: 'probability', align: 'right' },
              ],
              top.map((t, i) => [i + 1, t.label, `${(100 * t.probability).toFixed(2)} %`]),
            ),
          );
        });
      } finally {
        await session.dispose();
      }
    });
}
