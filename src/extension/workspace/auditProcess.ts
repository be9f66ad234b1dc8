/**
 * The audit child seen from the extension host: fork `dist/auditChild.js`, send one request, and turn every
 * way it can end into a report, `undefined` (aborted) or an error naming what happened. No `vscode` import.
 */
import type { AuditReport } from '../../core/audit/audit.js';
import type { AuditPhase } from '../../core/audit/runAudit.js';
import { parseAuditMessage, type AuditCommand, type AuditRequest } from '../../protocol/audit.js';
import { collectOutput, forkNode, watchHeartbeat } from '../childProcess.js';

export interface AuditHooks {
  onProgress?(phase: AuditPhase, done: number, total?: number): void;
  /** Lines the child printed (it should print none; a crash does). */
  onOutput?(line: string): void;
  /** Aborting kills the child. */
  signal?: AbortSignal;
  /** Silence after which the child counts as stuck and is killed (default 120 s; one image never takes that). */
  stallSeconds?: number;
}

export function runAuditProcess(
  script: string,
  request: AuditRequest,
  hooks: AuditHooks = {},
): Promise<AuditReport | undefined> {
  return new Promise((resolve, reject) => {
    if (hooks.signal?.aborted) return resolve(undefined);
    const child = forkNode(script);
    let report: AuditReport | undefined;
    let failure: string | undefined;
    watchHeartbeat(child, hooks.stallSeconds ?? 120, (what) => {
      failure = `the audit process stopped responding (${what}) and was killed`;
    });
    const { output, last } = collectOutput(child, hooks.onOutput);
    const abort = () => child.kill();
    hooks.signal?.addEventListener('abort', abort, { once: true });
    child.on('message', (raw: unknown) => {
      const message = parseAuditMessage(raw);
      switch (message?.type) {
        case 'heartbeat':
          break;
        case 'ready':
          if (child.connected) child.send({ type: 'audit', request } satisfies AuditCommand);
          break;
        case 'progress':
          hooks.onProgress?.(message.phase, message.done, message.total);
          break;
        case 'result':
          report = message.report;
          break;
        case 'error':
          if (message.stack) hooks.onOutput?.(message.stack);
          failure = message.message;
          break;
        default:
          output(`Ignored a message the extension does not understand: ${JSON.stringify(raw).slice(0, 200)}`);
      }
    });
    child.on('error', (error) => (failure ??= `the audit process could not run: ${error.message}`));
    // 'close', not 'exit': it waits for the IPC channel and pipes too, so no late message is lost.
    child.on('close', (code, signal) => {
      hooks.signal?.removeEventListener('abort', abort);
      if (hooks.signal?.aborted) return resolve(undefined);
      if (report) return resolve(report);
      reject(
        new Error(
          failure ??
            (last() ||
              `the audit process ${signal ? `was stopped by ${signal}` : `exited with code ${code}`} without a report`),
        ),
      );
    });
  });
}
