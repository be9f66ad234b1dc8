/**
 * Compare Runs…: two run folders side by side in a webview drawn by the results bundle (`dist/webview.js`),
 * the same renderer as `leukemia-audit compare --out`. The page asks with `ready`; the panel answers with
 * one `showComparison`.
 */
import * as vscode from 'vscode';
import type { ComparedRun } from '../../core/run/compare.js';
import { parseResultsMessage, type ShowComparisonMessage } from '../../protocol/results.js';
import { VIEW_TYPES } from '../commandIds.js';
import { renderPage } from '../webviewHtml.js';

export function showComparison(context: vscode.ExtensionContext, runs: ComparedRun[]): vscode.WebviewPanel {
  const title = `Compare: ${runs.map((c) => c.runDir.split(/[\\/]/).pop()).join(' vs ')}`;
  const panel = vscode.window.createWebviewPanel(VIEW_TYPES.comparison, title, vscode.ViewColumn.Active, {
    enableScripts: true,
    localResourceRoots: [
      vscode.Uri.joinPath(context.extensionUri, 'dist'),
      vscode.Uri.joinPath(context.extensionUri, 'media'),
    ],
  });
  panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'results.svg');
  const webview = panel.webview;
  webview.html = renderPage(webview, {
    title,
    stylesheets: [webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, 'media', 'results.css'))],
    scripts: [webview.asWebviewUri(vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview.js'))],
    body: '<main id="app"></main>',
  });
  const subscription = webview.onDidReceiveMessage((raw) => {
    if (parseResultsMessage(raw)?.type !== 'ready') return;
    void webview.postMessage({ type: 'showComparison', runs } satisfies ShowComparisonMessage);
  });
  panel.onDidDispose(() => subscription.dispose());
  return panel;
}
