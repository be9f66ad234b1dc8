/**
 * Builds the whole results view of a run into `root`. Used as is by the VS Code webview and the static
 * HTML report; only the `Host` differs. Each part is built on its own, so a part whose data is malformed
 * (an old or hand-edited run.json) shows a note instead of taking the rest of the page down.
 */
import type { RunFile } from '../../src/core/run/runFile.js';
import type { ViewState } from '../../src/protocol/results.js';
import { structuralBanner } from './banner.js';
import { confusionSection } from './confusion.js';
import { curvesSection } from './curves.js';
import { h, notAvailable, section } from './dom.js';
import { evaluationSection } from './evaluation.js';
import { evaluationChartsSection } from './evaluationCharts.js';
import { explanationsSection } from './explanations.js';
import { findingsSection } from './findings.js';
import type { Host } from './host.js';
import { metricsSection } from './metricsTable.js';
import { probeSection } from './probe.js';
import { Store } from './state.js';
import { summarySection } from './summary.js';

interface Part {
  id: string;
  title: string;
  build: (run: RunFile, host: Host, store: Store) => HTMLElement;
  /** Shown only for runs this accepts (default: every run). */
  when?: (run: RunFile) => boolean;
}

const PARTS: Part[] = [
  { id: 'summary', title: 'Run', build: (run, host) => summarySection(run, host) },
  {
    id: 'evaluation',
    title: 'Evaluation',
    build: (run) => evaluationSection(run),
    when: (run) => run.kind === 'evaluation',
  },
  {
    id: 'probe',
    title: 'Batch-effect probe',
    build: (run) => probeSection(run),
    when: (run) => run.kind === 'probe',
  },
  { id: 'findings', title: 'Audit findings', build: (run, host) => findingsSection(run.dataset.findings, host) },
  // A probe trains no model: it has none of the parts below.
  { id: 'metrics', title: 'Metrics', build: (run) => metricsSection(run), when: hasModel },
  {
    id: 'confusion',
    title: 'Confusion matrix',
    build: (run, _host, store) => confusionSection(run, store),
    when: hasModel,
  },
  { id: 'curves', title: 'Training curves', build: (run) => curvesSection(run), when: isTraining },
  { id: 'roc', title: 'ROC curve and calibration', build: (run) => evaluationChartsSection(run), when: hasModel },
  {
    id: 'gradcam',
    title: 'Grad-CAM',
    build: (run, host, store) => explanationsSection(run, host, store),
    when: hasModel,
  },
];

function hasModel(run: RunFile): boolean {
  return run.kind !== 'probe';
}

/** An evaluation or probe has no epochs: no training curves. */
function isTraining(run: RunFile): boolean {
  return run.kind === undefined || run.kind === 'training';
}

export function renderRun(root: HTMLElement, run: RunFile, host: Host, state: ViewState): void {
  const store = new Store(state, (s) => host.saveState(s));
  const shown = PARTS.filter((part) => safely(() => part.when?.(run) ?? true));
  const parts = shown.map((part) => {
    try {
      return part.build(run, host, store);
    } catch (error) {
      console.error(`leukemia-audit: could not render ${part.id}`, error);
      return section(
        part.id,
        part.title,
        notAvailable(`This part could not be shown: ${(error as Error).message ?? String(error)}`),
      );
    }
  });
  const banner = safely(() => structuralBanner(run));
  root.replaceChildren(header(run), ...(banner ? [banner] : []), navigation(shown), ...parts);
}

/** A message in place of the whole view: no run, or data that is not a run. */
export function renderMessage(root: HTMLElement, text: string): void {
  root.replaceChildren(h('p', { class: 'not-available' }, text));
}

const KIND_TITLES: Record<string, string> = { training: 'Run', evaluation: 'Evaluation', probe: 'Batch-effect probe' };

function header(run: RunFile): HTMLElement {
  const folder =
    typeof run.settings?.out === 'string' ? run.settings.out.split(/[\\/]/).filter(Boolean).pop() : undefined;
  return h(
    'header',
    { class: 'page-header' },
    h('h1', {}, `${KIND_TITLES[run.kind ?? 'training'] ?? 'Run'}${folder ? ` ${folder}` : ''}`),
    h('p', { class: 'hint' }, 'leukemia-audit · ResNet-18 on ', h('code', { class: 'path' }, run.dataset?.root ?? '')),
  );
}

function navigation(parts: readonly Part[]): HTMLElement {
  return h(
    'nav',
    { class: 'toc', 'aria-label': 'Sections' },
    h('ul', {}, ...parts.map((p) => h('li', {}, h('a', { href: `#${p.id}` }, p.title)))),
  );
}

function safely<T>(build: () => T | null): T | null {
  try {
    return build();
  } catch {
    return null;
  }
}
