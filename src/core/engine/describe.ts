/** How an engine is named to people: pure, so the pages and the report can import it without tfjs. */
import type { BackendReport } from '../run/runFile.js';

/**
 * For the dashboard's Engine tile and the log: "PyTorch 1.13.0 · cpu", "PyTorch 2.3.1 · cuda:0 · NVIDIA A100
 * ×2", "wasm", "onnxruntime (CPU), 2 threads" (what computes the steps; the tfjs backend holding the weights
 * is in describeBackendInFull).
 */
export function describeBackend(report: Pick<BackendReport, 'name' | 'torch' | 'steps'>): string {
  const t = report.torch;
  if (report.steps) return report.steps;
  if (report.name !== 'torch' || !t) return report.name;
  const device =
    t.deviceName && t.deviceName !== t.device && t.deviceName !== 'cpu' ? `${t.device} · ${t.deviceName}` : t.device;
  return `PyTorch ${t.torch} · ${device}${t.processes > 1 ? ` ×${t.processes}` : ''}`;
}

/** describeBackend plus what a reader checking a run wants: torchvision, interpreter, precision. */
export function describeBackendInFull(report: Pick<BackendReport, 'name' | 'torch' | 'steps'>): string {
  const t = report.torch;
  if (report.steps) return `${report.steps} · weights on ${report.name}`;
  if (report.name !== 'torch' || !t) return report.name;
  const extras = [
    `torchvision ${t.torchvision}`,
    `${t.python}`,
    ...(t.amp ? ['mixed precision'] : []),
    ...(t.channelsLast ? ['channels-last'] : []),
  ];
  return `${describeBackend(report)} (${extras.join(', ')})`;
}
