/**
 * Entry of the results bundle (`dist/webview.js`). Two hosts feed it the same `ShowRunMessage`:
 * - the static HTML report, as JSON in `<script type="application/json" id="run-data">`;
 * - the VS Code webview, as a `message` event; the script answers `ready` first, and `saveState` /
 *   `openImage` as the user works.
 */
import type {
  ExtensionToWebview,
  ShowComparisonMessage,
  PersistedWebviewState,
  ShowRunMessage,
  ViewState,
  WebviewToExtension,
} from '../src/protocol/results.js';
import { renderComparison } from './results/compare.js';
import type { Host } from './results/host.js';
import { renderMessage, renderRun } from './results/render.js';
import { DEFAULT_STATE, restoreState } from './results/state.js';

interface VsCodeApi {
  postMessage(message: WebviewToExtension): void;
  getState(): unknown;
  setState(state: PersistedWebviewState): void;
}

const acquireVsCodeApi = (globalThis as { acquireVsCodeApi?: () => VsCodeApi }).acquireVsCodeApi;

/** `imageUris` is data: own keys only, so a path like `constructor` cannot pick up a prototype member. */
function lookup(uris: Record<string, string>, path: string): string | undefined {
  return Object.hasOwn(uris, path) && typeof uris[path] === 'string' ? uris[path] : undefined;
}

function appRoot(): HTMLElement {
  const existing = document.getElementById('app');
  if (existing) return existing;
  const main = document.createElement('main');
  main.id = 'app';
  document.body.append(main);
  return main;
}

function show(root: HTMLElement, message: ShowRunMessage, host: Host, state: ViewState): void {
  if (!message.run || typeof message.run !== 'object' || !message.run.dataset) {
    renderMessage(root, 'This is not a leukemia-audit run.');
    return;
  }
  renderRun(root, message.run, host, state);
}

/** Two runs side by side; anything else in `runs` is not a comparison. */
function showComparison(root: HTMLElement, message: ShowComparisonMessage): void {
  const runs = Array.isArray(message.runs) ? message.runs : [];
  if (runs.length < 2 || !runs.every((c) => c?.run?.dataset && typeof c.runDir === 'string')) {
    renderMessage(root, 'This is not a comparison of leukemia-audit runs.');
    return;
  }
  renderComparison(root, runs);
}

function startStatic(root: HTMLElement, data: HTMLElement): void {
  let parsed: ExtensionToWebview;
  try {
    parsed = JSON.parse(data.textContent ?? '');
  } catch (error) {
    renderMessage(root, `The embedded run data cannot be read: ${(error as Error).message}`);
    return;
  }
  if (parsed?.type === 'showComparison') return showComparison(root, parsed);
  const message = parsed as ShowRunMessage;
  const host: Host = { imageUri: (path) => lookup(message.imageUris ?? {}, path), saveState: () => undefined };
  show(root, message, host, restoreState(message.state ?? DEFAULT_STATE));
}

function startWebview(root: HTMLElement, vscode: VsCodeApi): void {
  // What the user set survives re-renders (run.json changes every epoch) and the panel being hidden.
  const persisted = vscode.getState() as Partial<PersistedWebviewState> | undefined;
  let state: ViewState | null = persisted ? restoreState(persisted) : null;
  let runDir = typeof persisted?.runDir === 'string' ? persisted.runDir : undefined;
  const saveState = (next: ViewState) => {
    state = next;
    vscode.setState({ ...next, runDir });
    vscode.postMessage({ type: 'saveState', state: next });
  };
  window.addEventListener('message', (event: MessageEvent<ExtensionToWebview>) => {
    const message = event.data;
    if (message?.type === 'showComparison') return showComparison(root, message);
    if (message?.type !== 'showRun') return;
    state ??= restoreState(message.state);
    // Stored at once, not only on the first change, so the panel serializer can find the run after a reload.
    runDir = message.runDir ?? runDir;
    vscode.setState({ ...state, runDir });
    const host: Host = {
      imageUri: (path) => lookup(message.imageUris ?? {}, path),
      openImage: (path) => vscode.postMessage({ type: 'openImage', path }),
      saveState,
    };
    show(root, message, host, state);
  });
  renderMessage(root, 'Loading the run…');
  vscode.postMessage({ type: 'ready' });
}

const root = appRoot();
const embedded = document.getElementById('run-data');
if (embedded) startStatic(root, embedded);
else if (acquireVsCodeApi) startWebview(root, acquireVsCodeApi());
else renderMessage(root, 'No run to show.');
