/**
 * The status-bar item of the background audits: which dataset is being audited and how far (headers, then
 * pixels), hidden when none runs. Clicking it shows the log, where each audit reports its figures.
 */
import * as vscode from 'vscode';
import { describeAuditProgress, type AuditPhase } from '../../core/audit/runAudit.js';

export class AuditStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('leukemiaAudit.audit', vscode.StatusBarAlignment.Left, 10);
  private readonly running = new Map<number, string>();
  private next = 0;

  constructor(showLogCommand: string) {
    this.item.name = 'Leukemia Audit: background audit';
    this.item.command = showLogCommand;
  }

  /** Shows an audit starting; returns its progress reporter and its end. */
  begin(
    dataset: string,
    what: string,
  ): { progress(phase: AuditPhase, done: number, total?: number): void; end(): void } {
    const id = this.next++;
    const show = (detail: string) => {
      this.running.set(id, `${dataset} (${what}): ${detail}`);
      this.render();
    };
    show('starting');
    return {
      progress: (phase, done, total) => show(describeAuditProgress(phase, done, total)),
      end: () => {
        this.running.delete(id);
        this.render();
      },
    };
  }

  private render(): void {
    const lines = [...this.running.values()];
    if (lines.length === 0) return this.item.hide();
    this.item.text = `$(sync~spin) Auditing ${lines[0]}${lines.length > 1 ? ` (+${lines.length - 1})` : ''}`;
    this.item.tooltip = `Leukemia Audit is auditing in the background (a separate process):\n${lines.join('\n')}`;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
