/** HTML text shared by the report writer and the extension's webview pages; pure, no `vscode`. */

/** `text` as HTML text or a quoted attribute value: & < > " ' become numeric character references. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
