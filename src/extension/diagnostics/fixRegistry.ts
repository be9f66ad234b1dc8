/**
 * Quick fixes computed together with their diagnostics, kept until the next computation. The code action
 * provider only looks them up: the decision of what to fix lives in `src/core/editor`, made once.
 */
import * as vscode from 'vscode';

export interface PreparedFix {
  title: string;
  preferred: boolean;
  edits: { uri: vscode.Uri; range: vscode.Range; newText: string }[];
}

interface Entry {
  range: vscode.Range;
  code: string;
  /** Versions of the documents the edits were computed on; a fix on changed text is not offered. */
  versions: Map<string, number>;
  fixes: PreparedFix[];
}

export class FixRegistry implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];
  private readonly entries = new Map<string, Entry[]>();

  set(uri: vscode.Uri, entries: { range: vscode.Range; code: string; fixes: PreparedFix[] }[]): void {
    const withVersions = entries.map((entry) => ({ ...entry, versions: documentVersions(entry.fixes) }));
    if (withVersions.length > 0) this.entries.set(uri.toString(), withVersions);
    else this.entries.delete(uri.toString());
  }

  clear(uri: vscode.Uri): void {
    this.entries.delete(uri.toString());
  }

  provideCodeActions(
    document: vscode.TextDocument,
    _range: vscode.Range,
    context: vscode.CodeActionContext,
  ): vscode.CodeAction[] {
    const entries = this.entries.get(document.uri.toString()) ?? [];
    const actions: vscode.CodeAction[] = [];
    for (const diagnostic of context.diagnostics) {
      if (diagnostic.source !== 'leukemia-audit') continue;
      const code = typeof diagnostic.code === 'object' ? String(diagnostic.code.value) : String(diagnostic.code);
      const entry = entries.find((e) => e.code === code && e.range.isEqual(diagnostic.range));
      if (!entry || !upToDate(entry.versions)) continue;
      for (const fix of entry.fixes) {
        const action = new vscode.CodeAction(fix.title, vscode.CodeActionKind.QuickFix);
        action.diagnostics = [diagnostic];
        action.isPreferred = fix.preferred;
        action.edit = new vscode.WorkspaceEdit();
        for (const edit of fix.edits) action.edit.replace(edit.uri, edit.range, edit.newText);
        actions.push(action);
      }
    }
    return actions;
  }
}

function openDocument(uri: vscode.Uri): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
}

function documentVersions(fixes: PreparedFix[]): Map<string, number> {
  const versions = new Map<string, number>();
  for (const edit of fixes.flatMap((f) => f.edits)) {
    const document = openDocument(edit.uri);
    if (document) versions.set(edit.uri.toString(), document.version);
  }
  return versions;
}

function upToDate(versions: Map<string, number>): boolean {
  for (const [uri, version] of versions) {
    const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
    if (!document || document.version !== version) return false;
  }
  return true;
}

/** Offsets into `text` as positions, for files that are not open as documents. */
export function positionAt(text: string, offset: number): vscode.Position {
  let line = 0;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return new vscode.Position(line, offset - lineStart);
}

export const SEVERITY: Record<'error' | 'warning' | 'info', vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};
