/** Run summary: status, dataset, labels, backend, model and training settings, splits, notes. */
import { describeBackendInFull } from '../../src/core/engine/describe.js';
import type { RunFile } from '../../src/core/run/runFile.js';
import { h, section, type Child } from './dom.js';
import { badge, collapsible } from './elements.js';
import { formatDuration } from '../../src/core/train/progress.js';
import { count, dateTime, plural, SPLIT_NAMES } from './format.js';
import { imagePath, type Host } from './host.js';
import { objectView } from './values.js';

const STATUS_TONE = { completed: 'pass', running: 'info', cancelled: 'warning', failed: 'fail' } as const;

/** Rows a run that trained nothing leaves out: a probe also has no model of its own (its section says which). */
const NOT_TRAINED: Record<string, ReadonlySet<string>> = {
  evaluation: new Set(['Best epoch', 'Training', 'Time']),
  probe: new Set(['Best epoch', 'Model', 'Training', 'Time']),
};

export function summarySection(run: RunFile, host: Host): HTMLElement {
  const { settings, dataset, model, history } = run;
  const classCounts = new Map((dataset.spec?.classes ?? []).map((c) => [c.name, c.count]));
  const seconds = history.reduce((total, epoch) => total + epoch.seconds, 0);
  const stoppedEarly = run.status === 'completed' && history.length < settings.epochs;
  const items: [string, Child][] = [
    [
      'Status',
      h(
        'span',
        {},
        badge(run.status, STATUS_TONE[run.status] ?? 'neutral'),
        run.error ? h('span', { class: 'error-text' }, ` ${run.error}`) : null,
      ),
    ],
    ['Dataset', h('code', { class: 'path' }, dataset.root)],
    ['Labels', settings.labels],
    [
      'Classes',
      dataset.classes
        .map((name) => (classCounts.has(name) ? `${name} (${count(classCounts.get(name))})` : name))
        .join(', '),
    ],
    [
      'Best epoch',
      run.bestEpoch === null
        ? 'none yet'
        : `${run.bestEpoch} of ${history.length}${stoppedEarly ? ` (stopped early; ${settings.epochs} planned)` : ''}`,
    ],
    [
      'Backend',
      `${describeBackendInFull(run.backend)}${run.backend.skipped.length ? ` (skipped ${run.backend.skipped.join('; ')})` : ''}`,
    ],
    [
      'Model',
      `${model.architecture}, ${model.imageSize} × ${model.imageSize} px input, ${count(model.parameters)} parameters, weights ${settings.weights}`,
    ],
    [
      'Training',
      `${settings.strategy} · ${settings.optimizer} lr ${settings.learningRate} (${settings.schedule}) · batch ${settings.batchSize} · crop ${settings.crop} · seed ${settings.seed}`,
    ],
    [
      'Time',
      `${history.length === 0 ? 'no epoch finished yet' : `${formatDuration(seconds)} over ${plural(history.length, 'epoch')}`} · started ${dateTime(run.createdAt)} · updated ${dateTime(run.updatedAt)}`,
    ],
  ];
  const left = NOT_TRAINED[run.kind ?? 'training'];
  if (left) items.push([run.kind === 'probe' ? 'Probed' : 'Evaluated', dateTime(run.createdAt)]);
  const shown = left ? items.filter(([term]) => !left.has(term)) : items;
  return section(
    'summary',
    'Run',
    h('dl', { class: 'summary' }, ...shown.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    run.kind === 'probe' ? null : splitsTable(run),
    dataset.notes.length ? h('ul', { class: 'notes' }, ...dataset.notes.map((note) => h('li', {}, note))) : null,
    dataset.skipped.length
      ? collapsible(`${plural(dataset.skipped.length, 'unreadable file')} skipped`, {}, skippedList(run, host))
      : null,
    collapsible('All settings', {}, objectView(settings as unknown as Record<string, unknown>)),
  );
}

function splitsTable(run: RunFile): HTMLElement {
  const { classes, splits } = run.dataset;
  if (splits.length === 0) return h('p', { class: 'not-available' }, 'No split summary in this run.');
  return h(
    'table',
    { class: 'grid splits' },
    h('caption', {}, 'Images per split'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'split'),
        ...['images', ...classes, 'subjects', 'without subject'].map((c) => h('th', { scope: 'col', class: 'num' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      ...splits.map((s) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, SPLIT_NAMES[s.split] ?? s.split),
          h('td', { class: 'num' }, count(s.images)),
          ...classes.map((c) => h('td', { class: 'num' }, count(s.byClass[c] ?? 0))),
          h('td', { class: 'num' }, count(s.subjects)),
          h('td', { class: 'num' }, count(s.imagesWithoutSubject)),
        ),
      ),
    ),
  );
}

function skippedList(run: RunFile, host: Host): HTMLElement {
  return h(
    'ul',
    { class: 'paths' },
    ...run.dataset.skipped.map((s) =>
      h('li', {}, imagePath(host, s.path), ` ${s.reason}${s.detail ? `: ${s.detail}` : ''}`),
    ),
  );
}
