/**
 * The audit child process: runs one full audit (every image decoded) for its parent, the extension host,
 * and reports through the typed protocol. Exits when the audit ends, or when the parent goes away.
 */
import { setPriority } from 'node:os';
import { auditDataset } from '../core/audit/runAudit.js';
import { parseAuditCommand, type AuditMessage, type AuditRequest } from '../protocol/audit.js';
import { errorMessage, exitChild, notUnderstood, requireParent, sendToParent } from './parent.js';

const BACKGROUND_PRIORITY = 10;
const controller = new AbortController();
let busy = false;
const send = (message: AuditMessage) => sendToParent(message);

async function audit(request: AuditRequest): Promise<void> {
  busy = true;
  // A background audit yields the CPU to whatever the user is doing (best effort: not every OS allows it).
  if (request.background) {
    try {
      setPriority(BACKGROUND_PRIORITY);
    } catch {
      // Keeps the normal priority.
    }
  }
  try {
    const report = await auditDataset(request.root, {
      subjectPattern: request.subjectPattern,
      checkPixels: request.checkPixels,
      tablesInside: request.tablesInside,
      signal: controller.signal,
      onProgress: (phase, done, total) => void send({ type: 'progress', phase, done, total }),
    });
    await send({ type: 'result', report });
  } catch (error) {
    await send(errorMessage(error));
  } finally {
    exitChild();
  }
}

requireParent('audit child', 'use `leukemia-audit audit` instead');
process.on('message', (raw: unknown) => {
  const command = parseAuditCommand(raw);
  // Before a job, a command it cannot read is the job's one result (the parent sends one command only).
  if (!command) void send(notUnderstood('audit child', raw)).then(busy ? undefined : exitChild);
  else if (!busy) void audit(command.request);
});
// The parent died or closed the channel: stop instead of auditing for nobody.
process.on('disconnect', () => {
  controller.abort();
  if (!busy) process.exit(0);
});
void send({ type: 'ready', pid: process.pid });
