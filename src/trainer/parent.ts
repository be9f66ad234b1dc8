/** The child's end of the IPC channel to the extension host, shared by the trainer and the audit child. */

/** Sends one message; resolves once it is written (or at once when the parent is gone). */
export function sendToParent(message: object): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Started by hand instead of forked: say what to use instead, and exit. */
export function requireParent(what: string, instead: string): void {
  if (process.send) return;
  process.stderr.write(`The leukemia-audit ${what} is started by the extension (child_process.fork); ${instead}.\n`);
  process.exit(2);
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
