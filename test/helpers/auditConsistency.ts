// Findings must be derived from the one DatasetSpec the audit recommends: no finding may say "no labels"
// next to a spec that has them, recommend another source than the spec, or count other classes. Every
// audit test runs its report through `assertSpecConsistent`, so every layout in the suite is checked.
import assert from 'node:assert/strict';
import type { AuditReport } from '../../src/core/audit/audit.js';
import type { Finding } from '../../src/core/audit/findings.js';
import type { ScanResult } from '../../src/core/types.js';

let checkedLayouts = 0;

/** How many reports the check has run on in this process (printed by the suites). */
export function consistencyChecksRun(): number {
  return checkedLayouts;
}

export function assertSpecConsistent(report: AuditReport, scan?: ScanResult): void {
  checkedLayouts++;
  const { spec, findings } = report;
  const describe = () => findings.map((f) => `${f.code} (${f.severity}): ${f.message}`).join('\n');
  const where = (f: Finding, what: string) =>
    `${f.code}: ${what}\nspec: ${JSON.stringify(spec.labelSources)}\n${describe()}`;
  const recommended = spec.labelSources[0] ?? null;
  const labelled = recommended !== null;

  // The spec agrees with itself.
  assert.equal(
    spec.classes.reduce((sum, c) => sum + c.count, 0) + spec.unlabelled,
    report.images,
    'classes + unlabelled = images',
  );
  assert.equal(labelled, spec.classes.length > 0, `label sources ${JSON.stringify(spec.labelSources)} vs classes`);
  if (spec.split.kind === 'folds') assert.equal(spec.split.depth, spec.groups?.depth, 'fold plan follows the groups');
  if (spec.split.kind === 'predefined')
    assert.equal(spec.split.depth, spec.splits?.depth, 'split plan follows the splits');

  const has = (code: Finding['code']) => findings.some((f) => f.code === code);
  assert.equal(has('no-labels'), !labelled, `no-labels iff the spec has no label source\n${describe()}`);
  const classNames = new Set(spec.classes.map((c) => c.name));

  for (const f of findings) {
    if (labelled) {
      assert.doesNotMatch(f.message, /No (usable|diagnosis) labels were found/, where(f, 'says no labels'));
      if (/All images sit under one folder/.test(f.message))
        assert.match(f.message, /The diagnoses are /, where(f, 'one-folder trap without naming the labels'));
    }
    if ('recommendedLabelSource' in f.evidence && f.code !== 'nested-labels')
      assert.deepEqual(f.evidence.recommendedLabelSource, recommended, where(f, 'recommends another source'));
    switch (f.code) {
      case 'structural-labels':
        assert.equal(f.severity, labelled ? 'error' : 'warning', where(f, 'severity'));
        break;
      case 'nested-labels':
        assert.deepEqual(f.evidence.recommendedLabelSource, recommended, where(f, 'nested level is not the label'));
        break;
      case 'filename-labels':
        if (f.evidence.labelTable)
          assert.ok(
            spec.labelSources.some((s) => JSON.stringify(s) === JSON.stringify(f.evidence.labelTable)),
            where(f, 'describes a table the spec does not use'),
          );
        break;
      case 'label-table':
        if (/so it is not used/.test(f.message))
          assert.ok(
            !spec.labelSources.some((s) => s.kind === 'csv' && s.file === f.evidence.file),
            where(f, 'calls a used table unused'),
          );
        break;
      case 'class-imbalance':
      case 'too-few-images':
        assert.deepEqual(f.evidence.classes, spec.classes, where(f, 'counts other classes'));
        break;
      case 'confounded-groups': {
        const table = f.evidence.contingency as { columns: string[]; counts: number[][] };
        for (const column of table.columns) assert.ok(classNames.has(column), where(f, `class ${column} not in spec`));
        break;
      }
      default:
        break;
    }
    if (f.code === 'too-few-images' && /Only one class/.test(f.message)) assert.equal(spec.classes.length, 1);
  }
  if (scan) {
    const known = new Set([
      ...scan.images.map((i) => i.path),
      ...scan.unreadable.map((u) => u.path),
      ...scan.otherFiles,
    ]);
    for (const f of findings)
      for (const p of f.paths) assert.ok(known.has(p), where(f, `example path ${p} is not a file of the dataset`));
  }
}
