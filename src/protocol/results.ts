/**
 * The messages between the extension host and the results webview, declared once with the parser of what
 * the page sends: the extension and the webview bundle both import this file, so a renamed field fails the
 * type check on both sides. No Node built-ins here: the webview bundle imports it.
 *
 * The static HTML report (`leukemia-audit report`) embeds a `ShowRunMessage` as JSON in
 * `<script type="application/json" id="run-data">`, so both hosts feed the renderer the same payload.
 */
import type { ColormapName } from '../core/explain/colormaps.js';
import type { ComparedRun } from '../core/run/compare.js';
import type { RunFile } from '../core/run/runFile.js';

/** A confusion-matrix cell: the Grad-CAM gallery shows only samples of this split, true and predicted class. */
export interface CellFilter {
  split: 'val' | 'test';
  /** Class indices into `run.dataset.classes`. */
  true: number;
  predicted: number;
}

/** What the user set in the view; kept across re-renders (a running run is re-sent after every epoch). */
export interface ViewState {
  filter: CellFilter | null;
  /** Opacity of the Grad-CAM overlay over the original, 0…1. */
  opacity: number;
  /** `image`: each map scaled to its own maximum; `shared`: one scale for the whole run, comparable across images. */
  scale: 'image' | 'shared';
  /** Colour map the page paints the maps with; runs without raw maps (`cam`) keep the one baked into their PNGs. */
  colormap: ColormapName;
  sort: 'confidence-desc' | 'confidence-asc';
}

/** Extension → webview: render this run. Sent again whenever run.json changes. */
export interface ShowRunMessage {
  type: 'showRun';
  run: RunFile;
  /**
   * Run-relative image paths (the `original`, `overlay` and `overlayShared` of explanation samples) to URIs
   * the page may load: `webview.asWebviewUri(...)` strings in VS Code, `data:` URIs in the static report.
   * A path missing here is drawn as "image not available".
   */
  imageUris: Record<string, string>;
  /** State to restore, e.g. what the webview last sent in `saveState` before its panel was closed. */
  state?: ViewState;
  /**
   * The run folder (absolute). The webview keeps it in its VS Code state (`{ ...ViewState, runDir }`), so a
   * WebviewPanelSerializer can reopen the same run after a window reload.
   */
  runDir?: string;
}

/** What the webview stores with `vscode.setState`, and what a panel serializer receives back. */
export type PersistedWebviewState = ViewState & { runDir?: string };

/** Extension → webview (and the static comparison report): two runs side by side. */
export interface ShowComparisonMessage {
  type: 'showComparison';
  runs: ComparedRun[];
}

export type ExtensionToWebview = ShowRunMessage | ShowComparisonMessage;

export type WebviewToExtension =
  /** The script is listening: send `showRun`. */
  | { type: 'ready' }
  /** Open a dataset image; `path` is relative to `run.dataset.root`, as in findings and predictions. */
  | { type: 'openImage'; path: string }
  /** The view state changed; send it back as `showRun.state` to restore the view. */
  | { type: 'saveState'; state: ViewState };

/**
 * Messages from the page are input from a page that renders run data (file names, CSV values): checked field
 * by field before the extension acts on them. Paths are confined to the run's folders by the panel.
 */
export function parseResultsMessage(value: unknown): WebviewToExtension | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
      return { type: 'ready' };
    case 'openImage':
      return typeof message.path === 'string' &&
        message.path.length > 0 &&
        message.path.length < 4096 &&
        !message.path.includes('\0')
        ? { type: 'openImage', path: message.path }
        : undefined;
    case 'saveState':
      return typeof message.state === 'object' && message.state !== null
        ? { type: 'saveState', state: message.state as never }
        : undefined;
    default:
      return undefined;
  }
}
