import { GraphNetwork } from '../../nn/models/index.js';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../format/strata-file.js';
import { basename, dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { exportOnnx, MAX_OPSET, MIN_OPSET } from '../../export/onnx-export.js';
import { readStrata } from '../../format/index.js';
import type { Module } from '../../nn/module.js';
import { modelFromStrata } from '../../export/strata-model.js';
import { ensurePrecision } from '../../quant/quantize-model.js';
import { formatBytes } from '../../report/index.js';
import { println, processIo, type CliIo } from '../io.js';
import { parsePositiveInteger } from '../parse.js';
import { restoreModel } from '../restore.js';
import { checkBitsInFile } from './extract.js';
import { detectFileKind } from './info.js';
import { describeModelFile, ONNX_INPUT_METADATA } from '../model-file.js';

/** `--bits`: a bit-width, or 'fp' for the full-precision graph of a checkpoint. */
export function parseExportBits(text: string): number | 'fp' {
  if (text === 'fp') return 'fp';
  return parsePositiveInteger(text);
}

function parseInputSize(text: string): [number, number] {
  const parts = text.split(/[,x]/).map((p) => p.trim());
  const values = parts.map(Number);
  if (parts.length < 1 || parts.length > 2 || values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new InvalidArgumentError(`Expected a size such as 32 or 28,28 but received '${text}'.`);
  }
  return values.length === 1 ? [values[0], values[0]] : [values[0], values[1]];
}

export interface LoadedForExport {
  model: Module;
  /** null: full precision. */
  bits: number | null;
  /** Set when the precision was derived from the cascade rather than trained. */
  note?: string;
}

/** The network of a .strata file or a checkpoint, ready to run (or export) at the requested precision. */
export async function loadModelAt(
  path: string,
  requested: number | 'fp' | undefined,
): Promise<LoadedForExport> {
  const kind = detectFileKind(path);
  if (kind === 'onnx')
    throw new TypeError(`${path} is already an .onnx graph; export reads a .strata file or a checkpoint`);
  if (kind === 'strata') {
    if (requested === 'fp') {
      throw new RangeError(`${path} is a .strata file, which holds quantized precisions only (no --bits fp)`);
    }
    const bytes = new Uint8Array(await readFile(path));
    if (requested !== undefined) checkBitsInFile(path, bytes, requested);
    const { model, bits } = modelFromStrata(
      readStrata(bytes, requested === undefined ? {} : { bits: requested }),
      path,
    );
    return { model, bits };
  }
  const { model, quant, meta } = restoreModel(path);
  if (quant === null) {
    if (requested !== undefined && requested !== 'fp') {
      throw new RangeError(
        `checkpoint ${path} holds a full-precision model; it has no ${requested}-bit version`,
      );
    }
    return { model, bits: null };
  }
  if (requested === 'fp') return { model, bits: null, note: 'full-precision pass of a quantized model' };
  const bits = requested ?? meta.config.bits[0];
  if (bits < quant.minBits || bits > quant.topBits) {
    throw new RangeError(
      `Expected bits in [${quant.minBits}, ${quant.topBits}] (the range of checkpoint ${path}) but received ${bits}`,
    );
  }
  if (!quant.precisions.includes(bits)) {
    ensurePrecision(model, bits);
    return { model, bits, note: `${bits} bits was not trained; derived from the codes by the cascade` };
  }
  return { model, bits };
}

interface ExportFlags {
  bits?: number | 'fp';
  format: 'onnx';
  float?: boolean;
  output?: string;
  inputSize?: [number, number];
  batch?: number;
  opset?: number;
}

export function exportCommand(io: CliIo = processIo): Command {
  return new Command('export')
    .description(
      'Export one precision of a .strata file or checkpoint to ONNX (integer operators, or float with --float)',
    )
    .argument('<model>', 'a .strata model file or a training checkpoint')
    .addOption(
      new Option(
        '--bits <b>',
        "the precision to export, or 'fp' (checkpoints only); default the highest",
      ).argParser(parseExportBits),
    )
    .addOption(new Option('--format <format>', 'output format').choices(['onnx']).default('onnx'))
    .option(
      '--float',
      'a float graph with the dequantized weights instead of the integer one (ConvInteger, QLinearConv, MatMulInteger)',
    )
    .option(
      '-o, --output <file>',
      'the file to write (default: next to the model, named after it and the precision)',
    )
    .option('--input-size <h,w>', 'fix the input height and width (default: symbolic)', parseInputSize)
    .option('--batch <n>', 'fix the batch size (default: symbolic)', parsePositiveInteger)
    .option('--opset <n>', `ONNX opset in [${MIN_OPSET}, ${MAX_OPSET}]`, parsePositiveInteger)
    .action(async (path: string, flags: ExportFlags) => {
      const loaded = await loadModelAt(path, flags.bits);
      // The input size, normalisation and class names travel with the graph for predict and eval.
      const described = await describeModelFile(path);
      const write = (float: boolean) =>
        exportOnnx(loaded.model, {
          bits: loaded.bits,
          float,
          metadata: { [ONNX_INPUT_METADATA]: JSON.stringify(described) },
          ...(flags.inputSize !== undefined ? { inputSize: flags.inputSize } : {}),
          ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
          ...(flags.opset !== undefined ? { opset: flags.opset } : {}),
        });
      let float = flags.float === true;
      let onnx: Uint8Array;
      try {
        onnx = write(float);
      } catch (e) {
        // An imported graph with an op the integer plan does not cover (an element-wise product, a
        // concatenation) is written as the float graph of the same precision's weights, with a note.
        if (!(loaded.model instanceof GraphNetwork) || float || !(e instanceof TypeError)) throw e;
        println(
          io.err,
          `note: ${path} holds an imported graph that the integer ONNX export does not cover (${e.message}); ` +
            `writing the float graph of its ${loaded.bits}-bit weights`,
        );
        float = true;
        onnx = write(true);
      }
      const label = loaded.bits === null ? 'fp' : `w${loaded.bits}`;
      const stem = basename(path).replace(/\.(strata|ckpt)$/, '');
      const output = flags.output ?? join(dirname(path), `${stem}-${label}${float ? '-float' : ''}.onnx`);
      await writeFileAtomic(output, onnx);
      if (loaded.note !== undefined) println(io.err, `note: ${loaded.note}`);
      const kind = loaded.bits === null || float ? 'float' : 'integer';
      println(
        io.out,
        `${output}: ONNX ${kind} graph at ${loaded.bits === null ? 'full precision' : `${loaded.bits} bits`}, ` +
          `${formatBytes(onnx.length)} (input 'input' NCHW float32, output 'logits')`,
      );
    });
}
