/**
 * The sample images the page ships (src/web/samples), one per dataset family. Shared by the server,
 * which names each listed model's sample so the page can fetch it before its script runs, and the
 * client. Browser-safe: no node: imports.
 */
export function sampleImageFor(metadata: Record<string, unknown> | null | undefined): string | null {
  const dataset = typeof metadata?.dataset === 'string' ? metadata.dataset : '';
  if (dataset.startsWith('cifar10') && !dataset.startsWith('cifar100')) return '/samples/cifar10.png';
  if (dataset.startsWith('fashion-mnist')) return '/samples/fashion-mnist.png';
  if (dataset.startsWith('mnist')) return '/samples/mnist.png';
  return null;
}
