import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { Command } from 'commander';
import { MAGIC as STRATA_MAGIC, inspectStrata } from '../../format/index.js';
import { createModel } from '../../nn/models/index.js';
import { formatBytes, formatDuration, formatTable } from '../../report/index.js';
import { ONNX_METADATA } from '../../export/onnx-export.js';
import { readOnnxGraph, readOnnxMetadata } from '../../export/onnx-proto.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { println, processIo, type CliIo } from '../io.js';
import { trainingMeta } from '../restore.js';
import { precisionOffsetTable } from '../precision-offsets.js';
import { describeMode } from './train.js';
import { describePrecision, type PrecisionInfo } from './pack.js';

/** The architecture JSON of a file, with an imported graph summarised rather than printed op by op. */
function describeArchitecture(architecture: Record<string, unknown>): string {
  const { graph, ...rest } = architecture as { graph?: { ops?: unknown[] } };
  return graph === undefined
    ? JSON.stringify(architecture)
    : `${JSON.stringify(rest)} with an imported graph of ${graph.ops?.length ?? 0} ops`;
}

const CHECKPOINT_MAGIC = Uint8Array.from(Buffer.from('STRCKPT1', 'latin1'));

export type FileKind = 'checkpoint' | 'strata' | 'onnx';

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/**
 * Tells a training checkpoint, a .strata model file and an .onnx graph apart by their first bytes (an
 * ONNX ModelProto starts with its ir_version field, byte 0x08).
 */
export function detectFileKind(path: string): FileKind {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `${path}: ${code === 'ENOENT' ? 'file not found' : `cannot open (${code ?? (e as Error).message})`}`,
    );
  }
  const head = new Uint8Array(8);
  let read: number;
  try {
    if (statSync(path).isDirectory()) throw new Error(`${path}: is a folder, not a file`);
    read = readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  const bytes = head.subarray(0, read);
  if (startsWith(bytes, CHECKPOINT_MAGIC)) return 'checkpoint';
  if (startsWith(bytes, STRATA_MAGIC)) return 'strata';
  if (bytes.length > 1 && bytes[0] === 0x08) return 'onnx';
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(
    `${path}: neither a Strata checkpoint (magic "STRCKPT1"), a .strata model file (magic "STRATA\\0\\x01") ` +
      `nor an ONNX model (first byte 08); its first bytes are ${hex === '' ? '(none: the file is empty)' : hex}`,
  );
}

const count = (n: number) => n.toLocaleString('en-US');

function checkpointInfo(path: string, write: (line?: string) => void): void {
  const content = loadCheckpoint(path);
  const meta = trainingMeta(content, path);
  const { config, architecture } = meta;
  write(`checkpoint ${path} (${formatBytes(statSync(path).size)})`);
  write(
    `architecture: ${architecture.name}${architecture.graph !== undefined ? ` (${architecture.graph.ops.length} ops)` : ''}, ${architecture.numClasses} classes, ${architecture.inChannels} input channel${architecture.inChannels === 1 ? '' : 's'}` +
      (architecture.width !== undefined ? `, width ${architecture.width}` : ''),
  );
  const imported = (content.meta as { imported?: { from?: string; opset?: number; producer?: string } })
    .imported;
  if (imported !== undefined) {
    write(
      `imported from: ${imported.from ?? '?'} (ONNX opset ${imported.opset ?? '?'}${imported.producer ? `, ${imported.producer}` : ''})`,
    );
  }
  write(
    `dataset: ${config.dataset}${config.trainLimit > 0 ? ` (training subset of ${config.trainLimit} images)` : ''}`,
  );
  write(`mode: ${describeMode(config)}`);
  if (config.mode !== 'fp') {
    const edges = config.firstLast === 'fixed' ? `fixed at ${config.fixedBits} bits` : config.firstLast;
    write(
      `quantization: precisions ${config.bits.join(',')}; codes ${config.topBits}-bit, lowest ${config.minBits}; ` +
        `rule ${config.rule}; first/last layers ${edges}`,
    );
  }
  const state =
    meta.batch > 0
      ? `epoch ${meta.epoch + 1} of ${config.epochs} in progress (${meta.batch} batches done)`
      : `${meta.epoch} of ${config.epochs} epochs done${meta.epoch >= config.epochs ? ' (finished)' : ''}`;
  write(`progress: ${state}, ${formatDuration(meta.wallSeconds)} of training`);
  const network = createModel(architecture).parameterCount();
  let stored = 0;
  for (const [name, array] of content.arrays) if (name.startsWith('model.')) stored += array.length;
  write(
    `parameters: ${count(network)} in the network; ${count(stored)} model values stored ` +
      '(with batch-norm statistics and every precision’s own batch norms and scales)',
  );
  if (meta.history.length === 0) {
    write('history: no epoch finished yet');
    return;
  }
  const last = meta.history[meta.history.length - 1];
  const labels = Object.keys(last.valTop1);
  const rows = labels.map((label) => {
    let best = { epoch: 0, top1: -Infinity };
    for (const h of meta.history) {
      const v = h.valTop1[label];
      if (typeof v === 'number' && v > best.top1) best = { epoch: h.epoch, top1: v };
    }
    return [label, last.valTop1[label].toFixed(2), best.top1.toFixed(2), best.epoch];
  });
  write();
  write(
    formatTable(
      [
        { header: 'bits' },
        { header: `top-1 % (epoch ${last.epoch})`, align: 'right' },
        { header: 'best top-1 %', align: 'right' },
        { header: 'best epoch', align: 'right' },
      ],
      rows,
    ),
  );
}

function strataInfo(path: string, write: (line?: string) => void): void {
  const bytes = readFileSync(path);
  let info;
  try {
    info = inspectStrata(bytes);
  } catch (e) {
    if (e instanceof Error) e.message = `${path}: ${e.message}`;
    throw e;
  }
  const q = info.quantization;
  write(
    `.strata model file ${path} (${formatBytes(bytes.length)}), format ${info.formatVersion.major}.${info.formatVersion.minor}`,
  );
  write(`architecture: ${describeArchitecture(info.architecture)}`);
  write(`quantization: codes ${q.topBits}-bit, lowest ${q.minBits}-bit, rule ${q.rule}`);
  write(
    `tensors: ${info.layeredTensors} layered (${count(info.layeredWeights)} weights), ${info.fixedTensors} fixed; ` +
      `header ${formatBytes(info.headerLength)}, data from byte ${count(info.dataStart)}`,
  );
  if (info.bytesPresent < info.fileLength) {
    write(`truncated: ${count(info.bytesPresent)} of ${count(info.fileLength)} bytes present`);
  }
  write();
  const recorded = Array.isArray(info.metadata?.precisionInfo)
    ? new Map((info.metadata.precisionInfo as PrecisionInfo[]).map((p) => [p.bits, p]))
    : null;
  write(
    precisionOffsetTable(info, {
      header: recorded === null ? 'present' : 'present; source, top-1',
      cell: (p) =>
        (p.present ? 'yes' : 'no') +
        (recorded === null ? '' : `; ${describePrecision(recorded.get(p.bits))}`),
    }),
  );
  const split = recorded === null ? undefined : [...recorded.values()].find((p) => p.split !== null);
  if (split !== undefined) write(`top-1 measured on: ${split.split} (${split.samples} images)`);
  if (info.metadata !== null) {
    const { precisionInfo: _shown, ...rest } = info.metadata;
    write();
    write(`metadata: ${JSON.stringify(rest)}`);
  }
}

function onnxInfo(path: string, write: (line?: string) => void): void {
  const bytes = readFileSync(path);
  let graph;
  try {
    graph = readOnnxGraph(bytes);
  } catch (e) {
    throw new Error(`${path}: not a readable ONNX model (${(e as Error).message})`);
  }
  const meta = readOnnxMetadata(bytes);
  const bits = meta.get(ONNX_METADATA.bits);
  const mode = meta.get(ONNX_METADATA.mode);
  write(`ONNX model ${path} (${formatBytes(bytes.length)})`);
  if (bits !== undefined) {
    write(
      `exported by Strata: ${bits === 'float' ? 'full precision' : `${bits} bits`}, ${mode ?? 'unknown'} graph, ` +
        `${meta.get(ONNX_METADATA.classes) ?? '?'} classes, input ${meta.get(ONNX_METADATA.layout) ?? '?'}`,
    );
  }
  const weights = graph.initializers.reduce((sum, t) => sum + t.bytes, 0);
  write(
    `graph: ${count(graph.nodes.length)} nodes, ${count(graph.initializers.length)} initializers (${formatBytes(weights)})`,
  );
  const ops = new Map<string, number>();
  for (const n of graph.nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
  write();
  write(
    formatTable(
      [{ header: 'operator' }, { header: 'nodes', align: 'right' }],
      [...ops].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
    ),
  );
}

export function infoCommand(io: CliIo = processIo): Command {
  return new Command('info')
    .description('Describe a training checkpoint, a .strata model file (any prefix) or an .onnx graph')
    .argument('<file>', 'checkpoint.ckpt, model.strata or model.onnx')
    .action((path: string) => {
      const write = (line = '') => println(io.out, line);
      const kind = detectFileKind(path);
      if (kind === 'checkpoint') checkpointInfo(path, write);
      else if (kind === 'onnx') onnxInfo(path, write);
      else strataInfo(path, write);
    });
}
