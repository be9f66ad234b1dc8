/** The child's end of the IPC channel to the extension host, shared by the trainer and the audit child. */
import { watchParent } from './parentWatch.js';

/**
 * How often the main thread says it is alive. It can only say so between pieces of synchronous work, so a
 * parent that hears nothing for much longer knows the child is stuck (see `watchHeartbeat`).
 */
const HEARTBEAT_MS = 2_000;
/** How long a child whose parent died may take to stop on its own before the watcher kills it. */
const ORPHAN_GRACE_MS = 15_000;

/** Sends one message; resolves once it is written (or at once when the parent is gone). */
export function sendToParent(message: object): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * Started by hand instead of forked: say what to use instead, and exit. Otherwise start the heartbeat and
 * the watcher that ends this process when the parent goes.
 */
export function requireParent(what: string, instead: string): void {
  if (!process.send) {
    process.stderr.write(`The leukemia-audit ${what} is started by the extension (child_process.fork); ${instead}.\n`);
    process.exit(2);
  }
  setInterval(() => void sendToParent({ type: 'heartbeat' }), HEARTBEAT_MS).unref();
  watchParent(ORPHAN_GRACE_MS);
}

/** The `error` message of either protocol, for a failure or for a message the child does not understand. */
export function errorMessage(error: unknown): { type: 'error'; message: string; stack?: string } {
  return { type: 'error', message: (error as Error).message ?? String(error), stack: (error as Error).stack };
}

export function notUnderstood(what: string, raw: unknown): { type: 'error'; message: string } {
  return {
    type: 'error',
    message: `The ${what} received a message it does not understand: ${JSON.stringify(raw).slice(0, 200)}`,
  };
}

/** The job is over: close the channel and exit, whatever is still pending. */
export function exitChild(): never {
  process.disconnect?.();
  process.exit(0);
}
