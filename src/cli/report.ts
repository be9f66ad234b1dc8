/** The human-readable audit report the CLI prints (the `--json` output is the AuditReport itself). */
import type { AuditReport } from '../core/audit/audit.js';
import { formatCount } from '../core/audit/findings.js';
import type { LabelSource } from '../core/datasetSpec.js';
import { describeBackend } from '../core/engine/describe.js';
import type { RunFile } from '../core/run/runFile.js';

const SEVERITY_MARK = { error: 'ERROR  ', warning: 'WARNING', info: 'info   ' } as const;

export function describeLabelSource(source: LabelSource): string {
  switch (source.kind) {
    case 'folder':
      return `folder names at depth ${source.depth}`;
    case 'filename':
      return `file-name token #${source.tokenIndex < 0 ? `${-source.tokenIndex} from the end` : source.tokenIndex + 1}`;
    case 'csv':
      return `${source.file}, column ${source.labelColumn} (${Object.entries(source.valueToClass)
        .map(([v, c]) => `${v}=${c}`)
        .join(', ')})`;
  }
}

export function formatAuditReport(report: AuditReport): string {
  const { spec } = report;
  const lines: string[] = [];
  lines.push(`Dataset ${report.root}`);
  lines.push(
    `  ${formatCount(report.images)} images, ${formatCount(report.unreadable.length)} unreadable, ${formatCount(spec.unlabelled)} without a label`,
  );
  lines.push(`  Labels from: ${spec.labelSources.map(describeLabelSource).join(', then ') || 'nothing found'}`);
  lines.push(`  Classes: ${spec.classes.map((c) => `${c.name} ${formatCount(c.count)}`).join(', ') || 'none'}`);
  if (spec.groups)
    lines.push(
      `  Folds (depth ${spec.groups.depth}): ${spec.groups.groups.map((g) => `${g.name} ${formatCount(g.count)}`).join(', ')}`,
    );
  if (spec.splits)
    lines.push(
      `  Splits (depth ${spec.splits.depth}): ${spec.splits.splits.map((s) => `${s.name} (${s.role}) ${formatCount(s.count)}`).join(', ')}`,
    );
  lines.push(
    `  Subjects: ${formatCount(spec.subjects.count)} (${formatCount(spec.subjects.imagesWithSubject)} images matched ${spec.subjectPattern}${spec.subjectFolderDepth ? ` or have a patient folder at depth ${spec.subjectFolderDepth}` : ''})`,
  );
  lines.push(`  Proposed split: ${describeSplit(spec.split)}`);
  lines.push('');
  if (report.findings.length === 0) lines.push('No findings.');
  for (const finding of report.findings) {
    lines.push(`${SEVERITY_MARK[finding.severity]} [${finding.code}] ${finding.message}`);
    for (const path of finding.paths.slice(0, 3)) lines.push(`          ${path}`);
  }
  return lines.join('\n');
}

function describeSplit(split: AuditReport['spec']['split']): string {
  switch (split.kind) {
    case 'folds':
      return `cross-validation folds at depth ${split.depth}, validating on ${split.validationGroup}`;
    case 'predefined':
      return `the train/val/test folders at depth ${split.depth}`;
    case 'subject-disjoint':
      return `subject-disjoint, ${Math.round(split.validationFraction * 100)}% of subjects held out (seed ${split.seed})`;
  }
}

/** The metrics of a finished run, as a short table. */
export function formatMetrics(run: RunFile): string {
  const lines: string[] = [];
  if (run.dataset.labelsAreStructural)
    lines.push(
      'WARNING: trained on labels the audit judged structural; these metrics describe folders, not diagnoses.',
    );
  lines.push(
    `Run: ${run.status}, backend ${describeBackend(run.backend)}, best epoch ${run.bestEpoch ?? '-'} of ${run.history.length}`,
  );
  for (const [name, metrics] of [
    ['validation', run.metrics.validation],
    ['test', run.metrics.test],
  ] as const) {
    if (!metrics) continue;
    lines.push('');
    lines.push(`${name} (${metrics.sampleCount} images)`);
    lines.push(
      `  accuracy ${fmt(metrics.accuracy)}  balanced accuracy ${fmt(metrics.balancedAccuracy)}  weighted F1 ${fmt(metrics.weightedF1)}  macro F1 ${fmt(metrics.macroF1)}  ROC AUC ${fmt(metrics.rocAuc)}`,
    );
    if (metrics.positiveClass !== null)
      lines.push(
        `  sensitivity ${fmt(metrics.sensitivity)}  specificity ${fmt(metrics.specificity)} (positive: ${metrics.positiveClass})  ECE ${fmt(metrics.expectedCalibrationError)}`,
      );
    lines.push(`  confusion (rows true, columns predicted): ${metrics.classes.join(' / ')}`);
    metrics.confusionMatrix.counts.forEach((row, i) =>
      lines.push(`    ${metrics.classes[i].padEnd(8)} ${row.map((v) => String(v).padStart(6)).join('')}`),
    );
  }
  return lines.join('\n');
}

function fmt(value: number | null): string {
  return value === null ? '-' : value.toFixed(3);
}

/** An evaluation's verdict and contingency table (model output × true label), as printed by `evaluate`. */
export function formatEvaluation(run: RunFile): string {
  const evaluation = run.evaluation;
  if (!evaluation) return '';
  const { association: a } = evaluation;
  const lines = [`Verdict: ${a.verdict}.`];
  if (evaluation.mapping)
    lines.push(
      `Outputs mapped to classes by ${evaluation.mappedBy === 'names' ? 'name' : '--class-map'}: ` +
        evaluation.outputs.map((o, i) => `${o}=${run.dataset.classes[evaluation.mapping![i]]}`).join(', '),
    );
  else lines.push(`The outputs (${evaluation.outputs.join(', ')}) are not the classes: no accuracy, only association.`);
  const width = Math.max(8, ...a.outputs.map((o) => o.length + 2));
  lines.push(`  output × true label: ${a.classes.join(' / ')}`);
  a.table.forEach((row, i) =>
    lines.push(`    ${a.outputs[i].padEnd(width)}${row.map((v) => String(v).padStart(7)).join('')}`),
  );
  const worst = evaluation.perSubject.slice(0, 5);
  if (worst.length > 0)
    lines.push(
      `  lowest per-subject accuracy: ${worst.map((s) => `${s.subject} ${fmt(s.accuracy)} (${s.images})`).join(', ')}`,
    );
  return lines.join('\n');
}

/** A probe run as text: each probe's verdict, per-class recall and confusion matrix, then the notes. */
export function formatProbe(run: RunFile): string {
  const probe = run.probe;
  if (!probe) return 'Not a probe run.';
  const lines = [
    `Batch-effect probe of ${run.dataset.root}`,
    `  Features: ResNet-18 average pool (${probe.featureDimension}), ${probe.backbone.description}, ${probe.imageSize} px, crop ${probe.crop}`,
    `  Probe: ${probe.method.classifier}, C ${probe.method.C}, group k-fold by subject`,
    '',
  ];
  for (const result of [probe.group, probe.diagnosis]) {
    if (!result) continue;
    lines.push(`${result.predictable ? 'PREDICTABLE' : 'not predictable'}: ${result.verdict}`);
    lines.push(
      `  ${result.source}; ${formatCount(result.images)} images, ${formatCount(result.units)} ${result.unit}s, ${result.folds} folds`,
    );
    const width = Math.max(8, ...result.classes.map((c) => c.length));
    lines.push(
      `  ${'true \\ predicted'.padEnd(width + 2)}${result.classes.map((c) => c.padStart(width)).join('')}  recall`,
    );
    result.confusion.forEach((row, r) => {
      const recall = result.perClass[r].recall;
      lines.push(
        `  ${result.classes[r].padEnd(width + 2)}${row.map((n) => String(n).padStart(width)).join('')}  ${recall === null ? '–' : recall.toFixed(2)}`,
      );
    });
    lines.push('');
  }
  if (probe.finding) lines.push(`WARNING [${probe.finding.code}] ${probe.finding.message}`, '');
  for (const note of probe.notes) lines.push(`note: ${note}`);
  lines.push(
    `Time: ${probe.seconds.total.toFixed(1)} s (features ${probe.seconds.features.toFixed(1)} s: ${probe.cache.fromCache} cached, ${probe.cache.computed} computed)`,
  );
  return lines.join('\n');
}
