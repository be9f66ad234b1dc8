/** Commands that run a child process on workspace data and write into the workspace need workspace trust. */
import * as vscode from 'vscode';

/** True when the workspace is trusted; otherwise explains why `what` needs trust and returns false. */
export async function requireTrust(what: string, detail: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `${what} needs a trusted workspace.`,
    { modal: true, detail },
    'Manage Workspace Trust',
  );
  if (choice === 'Manage Workspace Trust') await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}
