/** The Grad-CAM part of a run: which maps, whether they pass the sanity and shortcut checks, and the gallery. */
import type { RunFile } from '../../src/core/run/runFile.js';
import { isCam } from './camCanvas.js';
import { h, notAvailable, section } from './dom.js';
import { checks } from './checks.js';
import { gallery } from './gallery.js';
import type { Host } from './host.js';
import type { Store } from './state.js';

const METHOD_NAMES = { gradcam: 'Grad-CAM', 'gradcam++': 'Grad-CAM++' } as const;

export function explanationsSection(run: RunFile, host: Host, store: Store): HTMLElement {
  const explanations = run.explanations;
  if (!explanations) {
    return section(
      'gradcam',
      'Grad-CAM',
      notAvailable(
        'No Grad-CAM explanations in this run yet: they are computed after training, for a sample of each confusion-matrix cell.',
      ),
    );
  }
  const method = METHOD_NAMES[explanations.method] ?? explanations.method;
  return section(
    'gradcam',
    'Grad-CAM',
    h(
      'p',
      { class: 'lead' },
      `${method} of the predicted class at `,
      h('code', {}, explanations.layer),
      // Maps painted in the page take the colour map chosen below; older runs have it baked into their PNGs.
      explanations.samples.some((s) => isCam(s.cam)) ? '.' : `, colour map ${explanations.colormap}.`,
    ),
    checks(explanations),
    explanations.samples.length === 0
      ? notAvailable('No samples were explained.')
      : gallery(run, explanations.samples, host, store),
  );
}
