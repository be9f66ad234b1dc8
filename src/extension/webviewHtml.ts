/**
 * The one way this extension builds webview HTML: a fresh nonce per page, a Content-Security-Policy that
 * allows only the extension's own stylesheet and scripts carrying that nonce, and nothing from the network.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { escapeHtml } from '../core/html.js';

export { escapeHtml };

export interface PageParts {
  title: string;
  stylesheets: vscode.Uri[];
  /** The page's bundle (webview URIs of dist/*.js), loaded as modules carrying the nonce. */
  scripts?: vscode.Uri[];
  body: string;
}

export function nonce(): string {
  return randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

export function renderPage(webview: vscode.Webview, parts: PageParts): string {
  const n = nonce();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${n}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${parts.stylesheets.map((href) => `<link rel="stylesheet" href="${href}">`).join('\n')}
<title>${escapeHtml(parts.title)}</title>
</head>
<body>
${parts.body}
${(parts.scripts ?? []).map((src) => `<script type="module" nonce="${n}" src="${src}"></script>`).join('\n')}
</body>
</html>`;
}
