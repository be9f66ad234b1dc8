/** The extension's one output channel ("Leukemia Audit"), a LogOutputChannel so users pick the level. */
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function log(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Leukemia Audit', { log: true });
  return channel;
}

/** An error for the user with a way to the details; the choice is awaited so callers can add buttons. */
export async function showErrorWithLog(message: string, ...actions: string[]): Promise<string | undefined> {
  log().error(message);
  const choice = await vscode.window.showErrorMessage(message, ...actions, 'Show Log');
  if (choice === 'Show Log') log().show(true);
  return choice;
}
