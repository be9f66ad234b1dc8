/**
 * What a probe run (`kind: "probe"`) shows: whether the structural group (fold, site, batch, date) and the
 * diagnosis can be told from frozen ResNet-18 features, each as balanced accuracy against chance with its
 * interval, per-class recall and the confusion matrix; the backbone, the method and what limits it.
 */
import type { ProbeTargetResult, RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section, type Child } from './dom.js';
import { badge, collapsible } from './elements.js';
import { count, fixed, percent, plural } from './format.js';

export function probeSection(run: RunFile): HTMLElement {
  const probe = run.probe;
  if (run.kind !== 'probe' || !probe) return section('probe', 'Batch-effect probe', notAvailable('Not a probe run.'));
  const about: [string, Child][] = [
    [
      'Features',
      `ResNet-18 average pool (${probe.featureDimension} per image), frozen, ${probe.imageSize} × ${probe.imageSize} px, crop ${probe.crop}`,
    ],
    [
      'Backbone',
      h(
        'span',
        {},
        probe.backbone.pretrained ? badge('pretrained', 'pass') : badge('random weights: weaker probe', 'warning'),
        ` ${probe.backbone.description}`,
      ),
    ],
    [
      'Probe',
      `${probe.method.classifier}, C ${probe.method.C}; ${probe.method.folds}-fold cross-validation grouped by subject`,
    ],
    [
      'Interval',
      `${Math.round(probe.method.level * 100)}% percentile interval of ${count(probe.method.resamples)} bootstrap resamples of the subjects`,
    ],
    [
      'Time',
      `${fixed(probe.seconds.total, 1)} s; features ${fixed(probe.seconds.features, 1)} s (${plural(probe.cache.fromCache, 'image')} from the cache, ${count(probe.cache.computed)} computed)`,
    ],
  ];
  return section(
    'probe',
    'Batch-effect probe',
    ...[probe.group, probe.diagnosis].map((result) => (result ? verdictBanner(result) : null)),
    probe.group
      ? null
      : notAvailable(
          'No structural grouping (fold, site, batch or date) was found or given: only the diagnosis was probed.',
        ),
    h('dl', { class: 'summary' }, ...about.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    // The notes (random backbone, no subject ids…) are the run's notes, shown in the summary above.
    h('div', { class: 'side-by-side' }, ...[probe.group, probe.diagnosis].map((r) => (r ? details(r) : null))),
    collapsible(
      'How to read this',
      {},
      h(
        'p',
        { class: 'hint' },
        'A linear probe is trained on frozen features of the images of some subjects and asked about the images of ',
        'subjects it never saw. If it tells the fold or site apart, the images of each fold or site look different ',
        '(stain, brightness, scanner, day), and any model trained on them can use that instead of the cells. ',
        `It counts as predictable when the interval\u2019s lower end is above chance (1/K for balanced accuracy) and `,
        `the chance-corrected balanced accuracy, (BA \u2212 1/K)/(1 \u2212 1/K), is at least ${fixed(probe.method.minKappa, 2)}. `,
        'With no signal, cross-validated accuracy tends to fall slightly below chance; that is expected.',
      ),
    ),
  );
}

function verdictBanner(result: ProbeTargetResult): HTMLElement {
  // A predictable diagnosis is what one hopes for; a predictable group is the warning.
  const alarming = result.target === 'group' && result.predictable;
  return h(
    'div',
    {
      class: `banner ${alarming ? 'banner-error' : 'banner-info'} probe-verdict`,
      role: alarming ? 'alert' : 'status',
      'data-target': result.target,
    },
    badge(
      result.predictable ? 'predictable' : 'not predictable',
      alarming ? 'fail' : result.predictable ? 'pass' : 'neutral',
    ),
    ' ',
    h('strong', {}, `${capitalised(result.one)}: `),
    result.verdict,
    alarming ? `: a model can learn the ${result.one} instead of the disease.` : '.',
  );
}

function details(result: ProbeTargetResult): HTMLElement {
  const { classes, confusion, perClass } = result;
  return h(
    'div',
    { class: 'probe-target', 'data-target': result.target },
    h('h3', {}, `${capitalised(result.one)} (${result.source})`),
    h(
      'p',
      { class: 'hint' },
      `${count(result.images)} images of ${plural(result.units, result.unit)}, ${result.folds} folds; balanced accuracy `,
      h('strong', { class: 'probe-ba' }, fixed(result.balancedAccuracy, 2)),
      ` against chance ${fixed(result.chance, 2)}, ${Math.round(result.interval.level * 100)}% CI ${fixed(result.interval.lower, 2)}\u2013${fixed(result.interval.upper, 2)}; accuracy ${percent(result.accuracy)}.`,
    ),
    h(
      'table',
      { class: 'confusion probe-confusion' },
      h('caption', {}, `Out-of-fold predictions, true ${result.one} (rows) × predicted`),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', class: 'axis' }, 'true ↓'),
          ...classes.map((c) => h('th', { scope: 'col' }, c)),
          h('th', { scope: 'col' }, 'recall'),
          h('th', { scope: 'col' }, result.unit === 'subject' ? 'subjects' : 'images'),
        ),
      ),
      h(
        'tbody',
        {},
        ...classes.map((c, t) => {
          const support = perClass[t].support;
          return h(
            'tr',
            {},
            h('th', { scope: 'row' }, c),
            ...classes.map((_, p) => {
              const n = confusion[t][p];
              const td = h(
                'td',
                { class: t === p ? 'diagonal' : 'off-diagonal' },
                h('div', { class: 'cell-body' }, h('span', { class: 'cell-count' }, count(n))),
              );
              td.style.setProperty('--share', String(support > 0 ? n / support : 0));
              return td;
            }),
            h('td', { class: 'num' }, perClass[t].recall === null ? '–' : percent(perClass[t].recall)),
            h('td', { class: 'num' }, count(perClass[t].units)),
          );
        }),
      ),
    ),
  );
}

function capitalised(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
