/**
 * The VS Code Elements (`@vscode-elements/elements`, Lit web components that read VS Code's theme
 * variables) the results view uses, each imported on its own so the bundle carries only these two:
 * - `vscode-badge` for severities, the run status and the Grad-CAM check verdicts;
 * - `vscode-collapsible` for evidence, example paths and settings.
 *
 * Not used, on purpose:
 * - `vscode-button` and `vscode-single-select` import `vscode-icon`, whose template holds a
 *   `<link rel="stylesheet" href=…>` for the codicon font and a documentation URL: the static report would
 *   no longer be a file that names nothing outside itself (see test/report.test.ts). The two also add about
 *   64 kB minified, more than this whole view, for two two-option choices. The gallery keeps a native
 *   `<select>` and `<button>`, drawn from the same theme variables those components read.
 * - There is no slider element; the overlay opacity stays a native range input.
 * - `vscode-tabs` would hide the test split behind the validation one, where the view shows them side by
 *   side to compare, and would leave the hidden panel out of a printed report. `vscode-table` is rows of
 *   custom elements with ARIA roles in a fixed-height scroll area: no row headers (`th scope=row`), and a
 *   printed page cuts it off.
 *
 * Lit styles these elements with constructable stylesheets (`adoptedStyleSheets`), which neither the
 * webview's nonce CSP nor the report's hash CSP blocks, and sets inline styles only through the CSSOM.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import type { VscodeCollapsible } from '@vscode-elements/elements/dist/vscode-collapsible/vscode-collapsible.js';
import { h, type Child } from './dom.js';

export type Tone = 'pass' | 'fail' | 'error' | 'warning' | 'info' | 'neutral';

/** A short verdict or severity; the colour comes from `badge-<tone>` in results.css, the word says it too. */
export function badge(text: string, tone: Tone): HTMLElement {
  return h('vscode-badge', { class: `badge badge-${tone}` }, text);
}

/** A closed section with a heading that opens it (click, Enter or Space). */
export function collapsible(heading: string, options: { class?: string }, ...children: Child[]): HTMLElement {
  const element = h('vscode-collapsible', { heading, class: options.class }, ...children);
  void element.updateComplete.then(() => makeHeaderAButton(element));
  return element;
}

/**
 * The element's header is a focusable div holding a chevron and an h3, toggled by click and Enter. Screen
 * readers are told what it is (a button that expands a region, and whether it is expanded, named by its
 * heading text; the chevron and the heading role are left out, so the outline keeps only real headings), and
 * Space toggles it as on any button. The attributes stay: Lit re-renders only the bound parts of its template.
 */
function makeHeaderAButton(element: VscodeCollapsible): void {
  const header = element.shadowRoot?.querySelector<HTMLElement>('.collapsible-header');
  const body = element.shadowRoot?.querySelector<HTMLElement>('.collapsible-body');
  if (!header) return;
  header.setAttribute('role', 'button');
  header.querySelector('svg')?.setAttribute('aria-hidden', 'true');
  header.querySelector('.title')?.setAttribute('role', 'none');
  if (body) {
    body.id = 'collapsible-body';
    header.setAttribute('aria-controls', body.id);
  }
  const sync = () => header.setAttribute('aria-expanded', String(element.open));
  sync();
  element.addEventListener('vsc-collapsible-toggle', sync);
  header.addEventListener('keydown', (event) => {
    if (event.key !== ' ') return;
    event.preventDefault();
    element.open = !element.open;
    sync();
    element.dispatchEvent(new CustomEvent('vsc-collapsible-toggle', { detail: { open: element.open } }));
  });
}
