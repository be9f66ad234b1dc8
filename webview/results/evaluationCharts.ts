/** ROC curve (discrimination) and reliability diagram (calibration) for every evaluated split. */
import type { RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section } from './dom.js';
import { count, fixed, percent } from './format.js';
import { lineChart, unitAxis, type Point, type Series } from './chart.js';
import { evaluatedSplits, noMetricsNote, type EvaluatedSplit } from './splits.js';

const TONE = { val: 2, test: 3 } as const;

export function evaluationChartsSection(run: RunFile): HTMLElement {
  const splits = evaluatedSplits(run);
  if (splits.length === 0) return section('roc', 'ROC curve and calibration', notAvailable(noMetricsNote(run)));
  return section(
    'roc',
    'ROC curve and calibration',
    h('div', { class: 'charts' }, rocChart(splits), reliabilityChart(splits)),
  );
}

function rocChart(splits: EvaluatedSplit[]): HTMLElement {
  const withCurve = splits.filter((s) => s.metrics.rocCurve);
  if (withCurve.length === 0) {
    return h(
      'figure',
      { class: 'chart-figure' },
      h('figcaption', {}, 'ROC curve'),
      notAvailable('No ROC curve: it needs a positive class and samples both of it and of the rest.'),
    );
  }
  const positive = withCurve[0].metrics.rocCurve!.positiveClass;
  const series: Series[] = withCurve.map(({ split, name, metrics }) => {
    const curve = metrics.rocCurve!;
    const points: Point[] = curve.fpr.map((x, i) => [x, curve.tpr[i]]);
    return { label: `${name} (AUC ${fixed(metrics.rocAuc)})`, tone: TONE[split], dashed: split === 'test', points };
  });
  return lineChart({
    title: `ROC curve, positive class ${positive}`,
    description: `True-positive rate against false-positive rate as the threshold on the probability of ${positive} falls.`,
    x: unitAxis('false-positive rate (1 − specificity)'),
    y: unitAxis('true-positive rate (sensitivity)'),
    series,
    diagonal: 'chance',
  });
}

function reliabilityChart(splits: EvaluatedSplit[]): HTMLElement {
  const series: Series[] = splits.map(({ split, name, metrics }) => {
    const bins = (metrics.reliability ?? []).filter(
      (b) => b.count > 0 && b.meanConfidence !== null && b.accuracy !== null,
    );
    const largest = Math.max(1, ...bins.map((b) => b.count));
    return {
      label: `${name} (ECE ${fixed(metrics.expectedCalibrationError)})`,
      tone: TONE[split],
      dashed: split === 'test',
      points: bins.map((b) => [b.meanConfidence!, b.accuracy!]),
      markers: {
        // Marker area follows the bin's share of the samples: a wild point from 2 images looks as small as it is.
        radius: (i) => 2 + 5 * Math.sqrt(bins[i].count / largest),
        describe: (i) =>
          `${name}: confidence ${fixed(bins[i].lower, 2)}–${fixed(bins[i].upper, 2)}, ${count(bins[i].count)} images, mean confidence ${percent(bins[i].meanConfidence)}, accuracy ${percent(bins[i].accuracy)}`,
      },
    };
  });
  return lineChart({
    title: 'Reliability diagram',
    description:
      'Accuracy against mean confidence in 15 equal-width confidence bins; a calibrated model lies on the diagonal.',
    x: unitAxis('confidence (probability of the predicted class)'),
    y: unitAxis('accuracy'),
    series,
    diagonal: 'perfect calibration',
  });
}
