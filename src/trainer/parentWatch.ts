/**
 * A child process must end when its parent goes. The IPC channel's `disconnect` event says so, but only to an
 * event loop that is free to hear it: a child stuck in synchronous work (a long kernel, a pathological regular
 * expression) would keep running as an orphan. So a worker thread, which runs whatever the main thread is
 * doing, polls the parent pid and ends the process when the parent is gone and the main thread has not
 * finished on its own within a grace period.
 */
import { Worker } from 'node:worker_threads';

const POLL_MS = 500;

/**
 * Evaluated in the worker: `process.ppid` changes when the parent dies (the child is re-parented to init or
 * a subreaper). SIGKILL, not exit: `process.exit` in a worker ends only the worker.
 */
const WATCHER = `
const { workerData } = require('node:worker_threads');
const { parent, graceMs, pollMs } = workerData;
const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), graceMs);
}, pollMs);
`;

/** Starts the watcher; `graceMs` is how long the main thread gets to stop cleanly (mark its run, exit). */
export function watchParent(graceMs: number): void {
  const worker = new Worker(WATCHER, { eval: true, workerData: { parent: process.ppid, graceMs, pollMs: POLL_MS } });
  // The watcher never keeps the child alive by itself.
  worker.unref();
}
