/**
 * How a trained model uses the low-precision grids (docs/EXPERIMENTS.md, the clipping trade-off):
 * per layered layer, the share of weights in the outer codes of the 2-bit and 3-bit grids and the
 * share clipped at the top precision, and the 2-bit step against the weights' spread (s_2 / std).
 * In once QAT the 2-bit bin edges sit at 0 and ±s_2 = ±2^(B-2) s_B, fixed by the shared top step;
 * a dedicated 2-bit model places them freely, so comparing the two shows what the shared grid costs.
 *
 *   npx tsx bench/grid-usage.ts runs/ablation/fashion-mnist/once5-s0/checkpoint.ckpt \
 *       runs/ablation/fashion-mnist/dedicated-w2-s0/checkpoint.ckpt
 */
import { formatTable } from '../src/report/index.js';
import { codesAt, quantizeToCodes } from '../src/quant/cascade.js';
import { quantizedLayers } from '../src/quant/quantize-model.js';
import { restoreModel } from '../src/cli/restore.js';

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('grid-usage: name one or more checkpoints');

for (const file of files) {
  const { model, meta } = restoreModel(file);
  const rows: (string | number)[][] = [];
  let outer2 = 0;
  let outer3 = 0;
  let clipped = 0;
  let total = 0;
  for (const [name, layer] of quantizedLayers(model)) {
    if (layer.config.role !== 'layered' || layer.weightScale === null) continue;
    const w = layer.weight.data;
    const channels = layer.weight.shape[0];
    const top = layer.topBits;
    const rule = layer.config.rule;
    // Unclipped top codes tell which weights the top grid clips.
    const wide = quantizeToCodes(w, layer.weightScale.data, channels, top + 8, rule);
    const codes = quantizeToCodes(w, layer.weightScale.data, channels, top, rule);
    let nClipped = 0;
    for (let i = 0; i < w.length; i++) if (wide[i] !== codes[i]) nClipped++;
    const share = (bits: number) => {
      const c = codesAt(codes, top, bits, rule);
      const lo = -(2 ** (bits - 1));
      const hi = 2 ** (bits - 1) - 1;
      let n = 0;
      for (const q of c) if (q === lo || q === hi) n++;
      return n;
    };
    const n2 = share(2);
    const n3 = share(3);
    // s_2 relative to each channel's standard deviation, the median over channels (a dead channel's
    // tiny spread would dominate a mean).
    const per = w.length / channels;
    const ratios: number[] = [];
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      let sq = 0;
      for (let i = c * per; i < (c + 1) * per; i++) {
        sum += w[i];
        sq += w[i] * w[i];
      }
      const std = Math.sqrt(Math.max(sq / per - (sum / per) ** 2, 1e-20));
      ratios.push((layer.weightScale.data[c] * 2 ** (top - 2)) / std);
    }
    ratios.sort((a, b) => a - b);
    rows.push([
      name,
      w.length,
      ((100 * n2) / w.length).toFixed(1),
      ((100 * n3) / w.length).toFixed(1),
      ((100 * nClipped) / w.length).toFixed(2),
      ratios[Math.floor(channels / 2)].toFixed(2),
    ]);
    outer2 += n2;
    outer3 += n3;
    clipped += nClipped;
    total += w.length;
  }
  rows.push([
    'all layered',
    total,
    ((100 * outer2) / total).toFixed(1),
    ((100 * outer3) / total).toFixed(1),
    ((100 * clipped) / total).toFixed(2),
    '',
  ]);
  console.log(`${file}: ${meta.config.mode} ${meta.config.bits.join(',')}`);
  console.log(
    formatTable(
      [
        { header: 'layer' },
        { header: 'weights' },
        { header: '2-bit outer %', align: 'right' },
        { header: '3-bit outer %', align: 'right' },
        { header: 'clipped at top %', align: 'right' },
        { header: 's_2 / std', align: 'right' },
      ],
      rows,
    ),
  );
}
