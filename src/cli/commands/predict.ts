import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { decodeImage } from '../../data/image-decode.js';
import { formatTable } from '../../report/index.js';
import { SESSION_ENGINES, type SessionArithmetic, type SessionEngineChoice } from '../../runtime/session.js';
import { imageToInput, toChannels, topClasses, type InputSpec } from '../../web/preprocess.js';
import { println, processIo, type CliIo } from '../io.js';
import { parsePositiveInteger } from '../parse.js';
import { openModel } from '../model-file.js';

interface PredictFlags {
  bits?: number;
  engine: SessionEngineChoice;
  float?: boolean;
  top: number;
  json?: boolean;
}

/** How a session computes, in words for the command line. */
export function describeArithmetic(arithmetic: SessionArithmetic): string {
  switch (arithmetic) {
    case 'float':
      return 'float arithmetic';
    case 'onnxruntime-integer':
      return 'integer ONNX graph';
    case 'native-int8':
      return 'oneDNN int8 kernels';
    case 'reference-int8':
      return 'TypeScript reference int8 kernels: the native addon is not loaded, so this is slow';
  }
}

export const ENGINE_HELP =
  'auto (native for a .strata file or checkpoint when the native addon is loaded, else onnxruntime; ' +
  'onnxruntime for an .onnx file), native (Strata engine: oneDNN int8 kernels) or onnxruntime ' +
  '(exported ONNX graph)';

/** Prints why a session does not run on the engine 'auto' prefers, when it does not. */
export function printEngineNote(io: CliIo, note: string | null): void {
  if (note !== null) println(io.err, `note: ${note}`);
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
    .description(
      'Classify images with one precision of a .strata file (any prefix), an .onnx graph or a checkpoint',
    )
    .argument('<model>', 'a .strata model file, an .onnx file from strata export, or a training checkpoint')
    .argument('<images...>', 'JPEG or PNG files')
    .option('--bits <b>', 'the precision to run (default: the highest the file holds)', parsePositiveInteger)
    .addOption(new Option('--engine <engine>', ENGINE_HELP).choices([...SESSION_ENGINES]).default('auto'))
    .option('--float', 'run the precision with float arithmetic instead of integer kernels')
    .option('--top <k>', 'how many classes to print per image', parsePositiveInteger, 5)
    .option('--json', 'print one JSON object per image instead of tables')
    .action(async (path: string, images: string[], flags: PredictFlags) => {
      const { session, spec, labels, bits } = await openModel(path, {
        ...(flags.bits !== undefined ? { bits: flags.bits } : {}),
        engine: flags.engine,
        float: flags.float === true,
      });
      try {
        printEngineNote(io, session.engineNote);
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
            write(
              JSON.stringify({ image, bits, engine: session.engine, arithmetic: session.arithmetic, top }),
            );
            return;
          }
          if (n > 0) write();
          write(
            `${image}: ${top[0].label} (${precision}, ${session.engine}, ${describeArithmetic(session.arithmetic)})`,
          );
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
