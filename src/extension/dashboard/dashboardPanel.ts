/** The live training dashboard: one panel, fed the folded TrainingView, throttled to a few updates a second. */
import * as vscode from 'vscode';
import { progressMessage, type TrainingView } from '../../core/train/progress.js';
import { VIEW_TYPES } from '../commandIds.js';
import { renderPage } from '../webviewHtml.js';
import { parseDashboardRequest, type DashboardUpdate } from '../../protocol/dashboard.js';

export interface DashboardActions {
  cancel(): void;
  openResults(runDir: string): void;
  showLog(): void;
}

const UPDATE_INTERVAL_MS = 250;

export class DashboardPanel {
  static readonly viewType = VIEW_TYPES.dashboard;
  private static current: DashboardPanel | undefined;

  private latest: DashboardUpdate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ready = false;

  static show(extensionUri: vscode.Uri, actions: DashboardActions, update?: DashboardUpdate): DashboardPanel {
    if (DashboardPanel.current) {
      DashboardPanel.current.actions = actions;
      DashboardPanel.current.panel.reveal(undefined, true);
    } else {
      const panel = vscode.window.createWebviewPanel(
        DashboardPanel.viewType,
        'Leukemia Audit: Training',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        {
          enableScripts: true,
          // The page loads its bundle and stylesheets, nothing else.
          localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
        },
      );
      panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'dashboard.svg');
      DashboardPanel.current = new DashboardPanel(panel, extensionUri, actions);
    }
    if (update) DashboardPanel.current.update(update);
    return DashboardPanel.current;
  }

  /** Updates the open dashboard, if any; never opens one. */
  static update(view: TrainingView, active: boolean): void {
    DashboardPanel.current?.update(dashboardUpdate(view, active));
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private actions: DashboardActions,
  ) {
    const asset = (...parts: string[]) => panel.webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...parts));
    panel.webview.html = renderPage(panel.webview, {
      title: 'Training',
      stylesheets: [asset('media', 'results.css'), asset('media', 'dashboard.css')],
      scripts: [asset('dist', 'dashboard.js')],
      body: '',
    });
    panel.webview.onDidReceiveMessage((raw) => {
      const request = parseDashboardRequest(raw);
      if (!request) return;
      if (request.type === 'ready') {
        this.ready = true;
        this.flush();
      } else if (request.type === 'cancel') {
        this.actions.cancel();
      } else if (request.type === 'showLog') {
        this.actions.showLog();
      } else if (this.latest?.view.runDir) {
        this.actions.openResults(this.latest.view.runDir);
      }
    });
    panel.onDidDispose(() => {
      clearTimeout(this.timer);
      DashboardPanel.current = undefined;
    });
  }

  private update(update: DashboardUpdate): void {
    this.latest = update;
    // Batches arrive many times a second; the page needs a few frames, and the last state always lands.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, UPDATE_INTERVAL_MS);
  }

  private flush(): void {
    if (this.ready && this.latest) void this.panel.webview.postMessage(this.latest);
  }
}

export function dashboardUpdate(view: TrainingView, active: boolean): DashboardUpdate {
  const finished = view.status === 'completed' ? 'Finished.' : view.status === 'cancelled' ? 'Cancelled.' : undefined;
  return { type: 'view', view, active, line: finished ?? progressMessage(view) };
}
