/** Loss and accuracy per epoch, training against validation, with the best epoch marked. */
import type { EpochRecord, RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section } from './dom.js';
import { fixed, percent } from './format.js';
import { lineChart, niceAxis, unitAxis, type Axis, type Point, type Series } from './chart.js';

type Metric = (e: EpochRecord) => number | null;

export function curvesSection(run: RunFile): HTMLElement {
  return section('curves', 'Training curves', trainingCurves(run.history ?? [], run.bestEpoch));
}

/**
 * The loss and accuracy charts of an epoch history (the results view's, and the training dashboard's while it
 * runs). `plannedEpochs` widens the x axis to the whole run, so a live chart does not rescale as epochs arrive.
 */
export function trainingCurves(history: EpochRecord[], bestEpoch: number | null, plannedEpochs = 0): HTMLElement {
  if (history.length === 0) return notAvailable('No finished epoch yet.');
  const epochs = epochAxis(history, Math.max(plannedEpochs, history[history.length - 1].epoch));
  const marker = bestEpoch === null ? undefined : { x: bestEpoch, label: `best (${bestEpoch})` };
  const lossSeries = [
    series('training loss', history, (e) => e.trainLoss, 1, false, fixed),
    series('validation loss', history, (e) => e.valLoss, 2, true, fixed),
  ];
  const losses = lossSeries.flatMap((s) => s.points.map(([, y]) => y));
  const loss = lineChart({
    title: 'Loss per epoch',
    description: `Cross-entropy loss after each of ${history.length} epochs, training and validation.`,
    x: epochs,
    y: niceAxis('loss', 0, Math.max(...losses), (v) => String(v)),
    series: lossSeries,
    verticalMarker: marker,
  });
  const accuracy = lineChart({
    title: 'Accuracy per epoch',
    description: `Accuracy after each of ${history.length} epochs: training, validation, and validation balanced accuracy.`,
    x: epochs,
    y: unitAxis('accuracy'),
    series: [
      series('training accuracy', history, (e) => e.trainAccuracy, 1, false, percent),
      series('validation accuracy', history, (e) => e.valAccuracy, 2, true, percent),
      series('validation balanced accuracy', history, (e) => e.valBalancedAccuracy, 4, true, percent),
    ],
    verticalMarker: marker,
  });
  return h('div', { class: 'charts' }, loss, accuracy);
}

function series(
  label: string,
  history: EpochRecord[],
  metric: Metric,
  tone: number,
  dashed: boolean,
  format: (v: number) => string,
): Series {
  const kept = history.filter((e) => metric(e) !== null && Number.isFinite(metric(e)));
  const points: Point[] = kept.map((e) => [e.epoch, metric(e)!]);
  return {
    label,
    tone,
    dashed,
    points,
    markers: { describe: (i) => `epoch ${kept[i].epoch}: ${label} ${format(points[i][1])}` },
  };
}

function epochAxis(history: EpochRecord[], last: number): Axis {
  const first = history[0].epoch;
  if (last - first <= 12) {
    const ticks = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const pad = first === last ? 0.5 : 0;
    return { label: 'epoch', min: first - pad, max: last + pad, ticks, format: String };
  }
  return niceAxis('epoch', first, last, (v) => String(Math.round(v)));
}
