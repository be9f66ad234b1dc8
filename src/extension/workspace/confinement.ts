/**
 * The workspace-trust rules for what the extension reads on its own: in an untrusted workspace an audit's
 * root and label tables stay inside the workspace folders (by real path), and a dataset file's subject
 * pattern is ignored. The rules themselves are pure (core/confine.ts); this reads VS Code's state.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { chooseSubjectPattern, confineAuditRoot, type ConfineContext } from '../../core/confine.js';
import { subjectPattern } from '../config.js';

export function confineContext(): ConfineContext {
  return {
    trusted: vscode.workspace.isTrusted,
    workspaceFolders: (vscode.workspace.workspaceFolders ?? [])
      .filter((f) => f.uri.scheme === 'file')
      .map((f) => f.uri.fsPath),
    home: os.homedir(),
  };
}

/** The real folder to audit for a root the workspace names; throws an Error saying why it may not be. */
export async function auditableRoot(root: string): Promise<string> {
  const confined = await confineAuditRoot(root, confineContext());
  if (!confined.ok) throw new Error(`${confined.reason}.`);
  return confined.root;
}

/** Label tables an audit may read: anywhere under the root when trusted, else inside the workspace folders. */
export function tablesInside(): string[] | undefined {
  const context = confineContext();
  return context.trusted ? undefined : [...context.workspaceFolders];
}

/** The subject pattern for a dataset: its leukemia-audit.json's only when the workspace is trusted. */
export function datasetSubjectPattern(filePattern: string | undefined, scope: vscode.Uri): string | undefined {
  return chooseSubjectPattern(filePattern, subjectPattern(scope), vscode.workspace.isTrusted);
}
