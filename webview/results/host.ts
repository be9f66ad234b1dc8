/** What the renderer needs from the page it lives in: the VS Code webview or the static HTML report. */
import type { ViewState } from '../../src/protocol/results.js';
import { h } from './dom.js';

export interface Host {
  /** A loadable URI for a run-relative image path, or undefined when it is not available. */
  imageUri(path: string): string | undefined;
  /** Opens a dataset image (path relative to the dataset root). Absent in the static report: paths stay plain text. */
  openImage?: (path: string) => void;
  saveState(state: ViewState): void;
}

/** A dataset image path: a link that opens the image where the host can, plain text otherwise. */
export function imagePath(host: Host, path: string): HTMLElement {
  const open = host.openImage;
  if (!open) return h('code', { class: 'path' }, path);
  return h('button', { type: 'button', class: 'path link', title: `Open ${path}`, onclick: () => open(path) }, path);
}
