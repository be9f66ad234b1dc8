/**
 * Entry of the training dashboard bundle (`dist/dashboard.js`): the live view of one run, fed the folded
 * TrainingView by the extension a few times a second. It draws the results view's training curves and words
 * progress with the core's helpers, so the dashboard and the results view say and draw the same thing. Data
 * reaches the DOM only through `h` (text nodes and attributes).
 */
import { formatDuration, overallFraction, type TrainingView } from '../../src/core/train/progress.js';
import type { DashboardRequest, DashboardUpdate } from '../../src/protocol/dashboard.js';
import { trainingCurves } from '../results/curves.js';
import { h } from '../results/dom.js';

interface VsCodeApi {
  postMessage(message: DashboardRequest): void;
}

const vscode = (globalThis as unknown as { acquireVsCodeApi(): VsCodeApi }).acquireVsCodeApi();

const tile = (label: string, id: string) =>
  h('div', {}, h('span', { class: 'label' }, label), h('span', { id, class: 'value' }, '–'));
const button = (id: string, text: string, request: DashboardRequest['type'], cls?: string) =>
  h('button', { id, class: cls, type: 'button', onclick: () => vscode.postMessage({ type: request }) }, text);

const page = {
  title: h('h1', { id: 'title' }, 'Training'),
  results: button('results', 'Open Results', 'openResults'),
  log: button('log', 'Show Log', 'showLog', 'secondary'),
  cancel: button('cancel', 'Cancel Training', 'cancel'),
  structural: h('p', { id: 'structural', class: 'banner', hidden: true }),
  status: h('p', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' }),
  progress: h('progress', { id: 'progress', max: 1, value: 0 }),
  curves: h('div', { id: 'curves' }),
  logLines: h('ol', { id: 'logLines', class: 'log' }),
  dataset: h('code', { id: 'dataset' }),
  labels: h('code', { id: 'labels' }),
  runDir: h('code', { id: 'runDir' }, '–'),
};
const tiles = {
  epoch: tile('Epoch', 'epoch'),
  batch: tile('Batch', 'batch'),
  speed: tile('Images/s', 'speed'),
  eta: tile('ETA', 'eta'),
  loss: tile('Loss (batch)', 'loss'),
  backend: tile('Engine', 'backend'),
};
page.results.hidden = true;

document.body.append(
  h('header', {}, page.title, h('div', { class: 'actions' }, page.results, page.log, page.cancel)),
  page.structural,
  page.status,
  page.progress,
  h('section', { class: 'tiles' }, ...Object.values(tiles)),
  page.curves,
  h('h2', {}, 'Log'),
  page.logLines,
  h('p', { class: 'paths' }, 'Dataset ', page.dataset, ' · labels ', page.labels, ' · run ', page.runDir),
);

function setTile(name: keyof typeof tiles, value: string): void {
  tiles[name].querySelector('.value')!.textContent = value;
}

function render({ view, active, line }: DashboardUpdate): void {
  const done = view.status === 'completed' || view.status === 'cancelled' || view.status === 'failed';
  page.title.textContent = `Training ResNet-18 — ${view.status}`;
  page.structural.hidden = !view.labelsAreStructural;
  page.structural.textContent = view.labelsAreStructural ? structuralWarning(view) : '';
  page.status.textContent = view.error ?? line;
  page.progress.value = view.status === 'completed' && !view.progress ? 1 : overallFraction(view);
  const p = view.progress;
  setTile('epoch', p ? `${p.epoch} / ${p.epochs}` : `0 / ${view.totalEpochs}`);
  setTile('batch', p ? `${p.batch} / ${p.batches}` : '–');
  setTile('speed', p ? p.imagesPerSecond.toFixed(1) : '–');
  setTile('eta', p && !done ? formatDuration(p.etaSeconds) : '–');
  setTile('loss', p ? p.loss.toFixed(4) : '–');
  setTile('backend', view.backend ?? '–');
  page.dataset.textContent = view.dataset;
  page.labels.textContent = view.labels;
  page.runDir.textContent = view.runDir ?? '–';
  page.curves.replaceChildren(trainingCurves(view.history, view.bestEpoch ?? null, view.totalEpochs));
  page.logLines.replaceChildren(...view.log.slice(-12).map((entry) => h('li', { class: entry.level }, entry.message)));
  page.cancel.disabled = !active || view.status === 'cancelling';
  page.results.hidden = !(done && view.runDir && view.history.length > 0);
}

function structuralWarning(view: TrainingView): string {
  return `These labels (${view.labels}) are what the audit judged structural (folds, splits or batches): this model learns the folder, not the diagnosis. The run is marked as such.`;
}

window.addEventListener('message', (event: MessageEvent<DashboardUpdate>) => {
  if (event.data?.type === 'view') render(event.data);
});
vscode.postMessage({ type: 'ready' });
