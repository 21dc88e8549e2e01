/** From RGBA pixels (a canvas's ImageData) to a model's input. Browser-safe: no node: imports. */
import { imageToInput, toChannels, type InputSpec } from './preprocess.js';

/**
 * RGBA pixels, row-major (what `CanvasRenderingContext2D.getImageData` gives), to the normalised
 * channels-last [H, W, C] input that `spec` describes (resized to its size, converted to its
 * channel count).
 */
export function pixelsToInput(
  rgba: ArrayLike<number>,
  height: number,
  width: number,
  spec: InputSpec,
): Float32Array {
  return imageToInput(toChannels(rgba, height, width, 4, spec.channels), spec);
}
