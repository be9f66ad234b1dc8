/**
 * The Results view: the shared renderer (`dist/webview.js`, `media/results.css`) in a panel that may read
 * only the extension's dist/media and the run folder (Grad-CAM PNGs); never the dataset folder a workspace
 * `run.json` names (the page loads no dataset image; opening one goes through the host). One panel per run;
 * re-sent whenever run.json changes (a running run rewrites it after every epoch); restored after a reload
 * by the WebviewPanelSerializer from the run folder the page keeps in its state.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { realPathInsideSync } from '../../core/confine.js';
import { resolveInside } from '../../core/paths.js';
import { runImagePaths } from '../../core/report/htmlReport.js';
import { RUN_FILE, type RunFile } from '../../core/run/runFile.js';
import { readRunFile } from '../../core/run/runFileIo.js';
import { parseResultsMessage, type ShowRunMessage, type ViewState } from '../../protocol/results.js';
import { VIEW_TYPES } from '../commandIds.js';
import { log } from '../log.js';
import { renderPage } from '../webviewHtml.js';

const STATE_KEY = 'leukemiaAudit.resultsViewState';
const RECENT_RUNS_KEY = 'leukemiaAudit.recentRuns';
const RELOAD_DEBOUNCE_MS = 300;

export class ResultsPanel {
  static readonly viewType = VIEW_TYPES.results;
  private static readonly panels = new Map<string, ResultsPanel>();

  private run: RunFile | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;

  /** Opens (or reveals) the results of a run folder. */
  static async show(context: vscode.ExtensionContext, runDir: string): Promise<ResultsPanel> {
    const key = path.resolve(runDir);
    const existing = ResultsPanel.panels.get(key);
    if (existing) {
      existing.panel.reveal();
      await existing.reload();
      return existing;
    }
    const run = await readRunFile(key);
    const panel = vscode.window.createWebviewPanel(ResultsPanel.viewType, title(key), vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: resourceRoots(context, key),
    });
    return new ResultsPanel(context, panel, key, run);
  }

  /** The serializer's half: VS Code kept the panel across a reload and hands it back with the page's state. */
  static async revive(context: vscode.ExtensionContext, panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runDir = runDirFromState(state) ?? rememberedRun(context, panel.title);
    if (!runDir || !existsSync(path.join(runDir, RUN_FILE))) {
      panel.webview.html = renderPage(panel.webview, {
        title: 'Results',
        stylesheets: [],
        body: '<p>The run this view showed is no longer available. Open another with <b>Leukemia Audit: Open Training Results</b>.</p>',
      });
      return;
    }
    try {
      const run = await readRunFile(runDir);
      panel.webview.options = { enableScripts: true, localResourceRoots: resourceRoots(context, runDir) };
      panel.title = title(runDir);
      new ResultsPanel(context, panel, path.resolve(runDir), run);
    } catch (error) {
      log().warn(`Could not restore the results of ${runDir}: ${(error as Error).message}`);
      panel.dispose();
    }
  }

  private constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly panel: vscode.WebviewPanel,
    private readonly runDir: string,
    run: RunFile,
  ) {
    this.run = run;
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'results.svg');
    ResultsPanel.panels.set(runDir, this);
    rememberRun(context, runDir);
    const webview = panel.webview;
    webview.html = renderPage(webview, {
      title: title(runDir),
      stylesheets: [webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, 'media', 'results.css'))],
      scripts: [webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview.js'))],
      body: '<main id="app"></main>',
    });
    this.disposables.push(
      webview.onDidReceiveMessage((raw) => this.onMessage(raw)),
      panel.onDidDispose(() => this.dispose()),
    );
    const watcher = vscode.workspace.createFileSystemWatcher(
      new vscode.RelativePattern(vscode.Uri.file(runDir), RUN_FILE),
    );
    const reload = () => {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => void this.reload(), RELOAD_DEBOUNCE_MS);
    };
    this.disposables.push(watcher, watcher.onDidChange(reload), watcher.onDidCreate(reload));
  }

  private async reload(options: { onlyIfChanged?: boolean } = {}): Promise<void> {
    try {
      const run = await readRunFile(this.runDir);
      if (options.onlyIfChanged && run.updatedAt === this.run?.updatedAt) return;
      this.run = run;
      this.post();
    } catch (error) {
      // run.json is replaced atomically, so this is a real problem (deleted, another schema), not a half-written file.
      log().warn(`Results view: ${(error as Error).message}`);
    }
  }

  private post(): void {
    if (!this.run) return;
    const imageUris: Record<string, string> = {};
    for (const relative of runImagePaths(this.run)) {
      // Lexically inside, and really inside: a symlink in explanations/ must not show a file from elsewhere.
      const file = resolveInside(relative, this.runDir, [this.runDir]);
      if (file && realPathInsideSync(file, [this.runDir]))
        imageUris[relative] = this.panel.webview.asWebviewUri(vscode.Uri.file(file)).toString();
    }
    // `runDir` is for the page to keep in its webview state (see runDirFromState); pages that ignore it lose nothing.
    const message: ShowRunMessage & { runDir: string } = {
      type: 'showRun',
      run: this.run,
      imageUris,
      state: savedState(this.context, this.runDir),
      runDir: this.runDir,
    };
    void this.panel.webview.postMessage(message);
  }

  private onMessage(raw: unknown): void {
    const message = parseResultsMessage(raw);
    if (!message) {
      log().warn(`Results view sent a message that was ignored: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.post();
        // run.json may have changed between show() reading it and the file watcher going live.
        void this.reload({ onlyIfChanged: true });
        break;
      case 'saveState':
        void this.context.workspaceState.update(`${STATE_KEY}:${this.runDir}`, message.state);
        break;
      case 'openImage': {
        const root = this.run?.dataset.root;
        const file = root ? openableImage(message.path, root) : undefined;
        if (!file) {
          log().warn(
            `Refused to open ${JSON.stringify(message.path)}: it is not inside the dataset folder ${root ?? '(unknown)'}` +
              `${vscode.workspace.isTrusted ? '' : ' within the workspace'}, or does not exist.`,
          );
          return;
        }
        void vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file), {
          viewColumn: vscode.ViewColumn.Beside,
          preview: true,
        });
        break;
      }
    }
  }

  private dispose(): void {
    clearTimeout(this.reloadTimer);
    ResultsPanel.panels.delete(this.runDir);
    for (const d of this.disposables) d.dispose();
  }
}

/**
 * The file a page asked to open, when it lies inside the run's dataset folder both lexically and by real path (a
 * symlink in the dataset must not open a file elsewhere). run.json is workspace content, so in an untrusted
 * workspace the dataset folder it names counts only within the workspace folders.
 */
function openableImage(relative: string, root: string): string | undefined {
  const file = resolveInside(relative, root, [root]);
  const real = file && realPathInsideSync(file, [root]);
  if (!real || vscode.workspace.isTrusted) return real;
  return realPathInsideSync(
    real,
    (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
  );
}

export function registerResultsSerializer(context: vscode.ExtensionContext): vscode.Disposable {
  return vscode.window.registerWebviewPanelSerializer(ResultsPanel.viewType, {
    deserializeWebviewPanel: (panel, state) => ResultsPanel.revive(context, panel, state),
  });
}

function title(runDir: string): string {
  return `Results: ${path.basename(runDir)}`;
}

/**
 * The extension's bundles and styles and the run folder (Grad-CAM PNGs). Not `run.json`'s `dataset.root`: the
 * file is workspace data and may name any folder, and the page never loads dataset images itself.
 */
export function resourceRoots(context: vscode.ExtensionContext, runDir: string): vscode.Uri[] {
  return [
    vscode.Uri.joinPath(context.extensionUri, 'dist'),
    vscode.Uri.joinPath(context.extensionUri, 'media'),
    vscode.Uri.file(runDir),
  ];
}

function savedState(context: vscode.ExtensionContext, runDir: string): ViewState | undefined {
  return context.workspaceState.get<ViewState>(`${STATE_KEY}:${runDir}`);
}

/** The page's saved state names its run when the renderer stores it (`runDir`); older pages do not. */
function runDirFromState(state: unknown): string | undefined {
  const runDir = (state as { runDir?: unknown } | undefined)?.runDir;
  return typeof runDir === 'string' && path.isAbsolute(runDir) ? runDir : undefined;
}

/**
 * Fallback for pages whose state does not name their run: VS Code restores a panel with its title, and the
 * title names the run folder; the most recently opened run of that name wins.
 */
function rememberedRun(context: vscode.ExtensionContext, panelTitle: string): string | undefined {
  return context.workspaceState.get<string[]>(RECENT_RUNS_KEY, []).find((runDir) => title(runDir) === panelTitle);
}

const MAX_RECENT_RUNS = 20;

export function rememberRun(context: vscode.ExtensionContext, runDir: string): void {
  const runs = context.workspaceState.get<string[]>(RECENT_RUNS_KEY, []).filter((r) => r !== runDir);
  void context.workspaceState.update(RECENT_RUNS_KEY, [runDir, ...runs].slice(0, MAX_RECENT_RUNS));
}

/** Runs opened in this workspace, most recent first (they may live outside the runs folder). */
export function recentRuns(context: vscode.ExtensionContext): string[] {
  return context.workspaceState.get<string[]>(RECENT_RUNS_KEY, []);
}
