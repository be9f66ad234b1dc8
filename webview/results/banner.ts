/** The warning every view of a run trained on structural labels carries: its numbers are about folders. */
import type { RunFile } from '../../src/core/run/runFile.js';
import { h } from './dom.js';

export function structuralBanner(run: RunFile): HTMLElement | null {
  if (!run.dataset?.labelsAreStructural) return null;
  const classes = (run.dataset.classes ?? []).join(', ');
  return h(
    'div',
    { class: 'banner banner-error', role: 'alert' },
    h('strong', {}, 'These labels are folders, not diagnoses. '),
    `The model was trained on classes the audit judged structural (${classes}): folds, splits or similar partitions. `,
    'It predicts which folder an image came from, and every metric below measures that, not leukemia. ',
    'See the structural-labels finding for the labels to use instead.',
  );
}
