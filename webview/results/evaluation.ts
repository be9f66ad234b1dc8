/**
 * What an evaluation run (`kind: "evaluation"`) adds: which checkpoint was read and what the loader recognised
 * in it, how the model's outputs map to the dataset's classes, the verdict on whether the outputs carry any
 * information about the true labels with its contingency table and statistics, and per-subject accuracy.
 */
import type { RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section, type Child } from './dom.js';
import { badge, collapsible } from './elements.js';
import { count, fixed, percent } from './format.js';

export function evaluationSection(run: RunFile): HTMLElement {
  const evaluation = run.evaluation;
  if (run.kind !== 'evaluation' || !evaluation)
    return section(
      'evaluation',
      'Evaluation',
      notAvailable('A training run: the model was trained here, not evaluated.'),
    );
  const { checkpoint, association: a } = evaluation;
  const recognised: [string, Child][] = [
    ['Checkpoint', h('code', { class: 'path' }, checkpoint.file)],
    ['Read as', `${checkpoint.format === 'safetensors' ? 'safetensors' : 'PyTorch'} ${checkpoint.container}`],
    ['Prefix stripped', checkpoint.prefix ? h('code', {}, checkpoint.prefix) : 'none (torchvision keys)'],
    ['Classifier', checkpoint.head ? `${checkpoint.head}, ${checkpoint.numClasses} outputs` : 'none'],
    [
      'Output names',
      `${evaluation.outputs.join(', ')}${checkpoint.classesSource ? ` (from ${checkpoint.classesSource})` : ' (the checkpoint names none)'}`,
    ],
    [
      'Outputs as classes',
      evaluation.mapping
        ? `${evaluation.outputs.map((o, i) => `${o} → ${run.dataset.classes[evaluation.mapping![i]]}`).join(', ')} (${evaluation.mappedBy === 'names' ? 'by name' : 'as chosen: --class-map, or the pick in the editor'})`
        : 'not the dataset\u2019s classes: no accuracy, only the association below',
    ],
    ['Labels', evaluation.labels === 'auto' ? 'the audit\u2019s recommendation' : evaluation.labels],
  ];
  return section(
    'evaluation',
    'Evaluation',
    h(
      'div',
      { class: `banner ${a.informative ? 'banner-info' : 'banner-error'}`, role: a.informative ? 'status' : 'alert' },
      badge(
        { none: 'no information', weak: 'little information', strong: 'informative' }[a.level] ?? a.level,
        a.informative ? 'pass' : 'fail',
      ),
      ' ',
      h('strong', {}, `Verdict: ${a.verdict}.`),
    ),
    h('dl', { class: 'summary' }, ...recognised.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    contingencyTable(a),
    h(
      'p',
      { class: 'hint' },
      `χ² ${fixed(a.chiSquare, 1)} with ${a.degreesOfFreedom} degree${a.degreesOfFreedom === 1 ? '' : 's'} of freedom; Cramér\u2019s V ${fixed(a.cramersV, 3)} ` +
        `(0 = the output says nothing about the label, 1 = it determines it); mutual information ` +
        `${fixed(a.mutualInformationBits, 4)} of the label\u2019s ${fixed(a.labelEntropyBits, 4)} bits.`,
    ),
    evaluation.perSubject.length > 0
      ? collapsible(`Accuracy per subject (${evaluation.perSubject.length}, lowest first)`, {}, subjects(run))
      : null,
  );
}

/**
 * The model output × true label table, with Cramér's V in its caption: the Evaluation section and Compare
 * Runs (for an evaluation whose outputs are not the classes, which has no confusion matrix) both draw it.
 */
export function contingencyTable(a: NonNullable<RunFile['evaluation']>['association']): HTMLElement {
  return h(
    'table',
    { class: 'grid contingency' },
    h(
      'caption',
      {},
      `Model output (rows) × true label (columns), ${count(a.n)} images · Cramér\u2019s V ${fixed(a.cramersV, 2)}`,
    ),
    h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col' }, 'output'), ...a.classes.map((c) => h('th', { scope: 'col' }, c))),
    ),
    h(
      'tbody',
      {},
      ...a.table.map((row, i) =>
        h('tr', {}, h('th', { scope: 'row' }, a.outputs[i]), ...row.map((n) => h('td', { class: 'num' }, count(n)))),
      ),
    ),
  );
}

function subjects(run: RunFile): HTMLElement {
  const classes = run.dataset.classes;
  return h(
    'table',
    { class: 'grid' },
    h(
      'thead',
      {},
      h('tr', {}, ...['subject', 'images', ...classes, 'accuracy'].map((title) => h('th', { scope: 'col' }, title))),
    ),
    h(
      'tbody',
      {},
      ...run.evaluation!.perSubject.map((s) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, s.subject),
          h('td', { class: 'num' }, count(s.images)),
          ...classes.map((c) => h('td', { class: 'num' }, count(s.byClass[c] ?? 0))),
          h('td', { class: 'num' }, percent(s.accuracy)),
        ),
      ),
    ),
  );
}
