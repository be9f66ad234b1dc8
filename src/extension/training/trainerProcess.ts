/**
 * The trainer child process seen from the extension host: fork `dist/trainer.js`, speak the typed protocol,
 * and turn every way it can end — result, cancel, error, crash, kill — into one outcome. tfjs and sharp
 * load only in that process; a native crash there cannot take the extension host down.
 */
import type { ChildProcess } from 'node:child_process';
import { type RunFile } from '../../core/run/runFile.js';
import { markRunFailed } from '../../core/run/runFileIo.js';
import type { TrainEvent } from '../../core/train/events.js';
import type { TrainSettings } from '../../core/train/settings.js';
import { parseTrainerMessage, type TrainerCommand } from '../../protocol/trainer.js';
import { forkNode, forwardLines, watchHeartbeat } from '../childProcess.js';

/** `runDir` is the one the trainer announced in its `started` event (null when it failed before). */
export type TrainerOutcome =
  | { kind: 'result'; runDir: string; run: RunFile }
  | { kind: 'cancelled'; runDir: string | null }
  | { kind: 'error'; message: string; runDir: string | null }
  /** The process ended without saying why: killed, out of memory, a native crash. */
  | { kind: 'crashed'; code: number | null; signal: NodeJS.Signals | null; runDir: string | null };

export interface TrainerHooks {
  onEvent(event: TrainEvent): void;
  onOutput(line: string, stream: 'stdout' | 'stderr'): void;
}

/** How long a cancelled trainer may take to finish its batch and write run.json before it is killed. */
const CANCEL_GRACE_MS = 30_000;
/**
 * Silence after which the trainer counts as stuck. Its heartbeat pauses during one synchronous training
 * step, which takes seconds at the usual sizes and about a minute at 450 px with large batches on wasm.
 */
const STALL_SECONDS = 300;

export class TrainerProcess {
  private child: ChildProcess | undefined;
  private runDir: string | null = null;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly script: string,
    private readonly stallSeconds = STALL_SECONDS,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(settings: TrainSettings, hooks: TrainerHooks): Promise<TrainerOutcome> {
    return new Promise((resolve) => {
      let final: TrainerOutcome | undefined;
      let stalled: string | undefined;
      let lastActivity = 'starting';
      const child = forkNode(this.script);
      this.child = child;
      watchHeartbeat(child, this.stallSeconds, (what) => {
        stalled = `the trainer stopped responding (${what}, while ${lastActivity}) and was killed`;
      });
      forwardLines(child.stdout, (line) => hooks.onOutput(line, 'stdout'));
      forwardLines(child.stderr, (line) => hooks.onOutput(line, 'stderr'));
      child.on('message', (raw: unknown) => {
        const message = parseTrainerMessage(raw);
        switch (message?.type) {
          case 'ready':
            this.send({ type: 'train', settings });
            break;
          case 'heartbeat':
            break;
          case 'event':
            if (message.event.type === 'started') this.runDir = message.event.runDir;
            lastActivity = describeActivity(message.event, lastActivity);
            hooks.onEvent(message.event);
            break;
          case 'result':
            final = { kind: 'result', runDir: this.runDir!, run: message.run };
            break;
          case 'cancelled':
            final = { kind: 'cancelled', runDir: this.runDir };
            break;
          case 'error':
            if (message.stack) hooks.onOutput(message.stack, 'stderr');
            final = { kind: 'error', message: message.message, runDir: this.runDir };
            break;
          default:
            hooks.onOutput(
              `Ignored a message the extension does not understand: ${JSON.stringify(raw).slice(0, 200)}`,
              'stderr',
            );
        }
      });
      child.on('error', (error) => {
        final ??= {
          kind: 'error',
          message: `The trainer process could not run: ${error.message}`,
          runDir: this.runDir,
        };
      });
      // 'close', not 'exit': it waits for the IPC channel and pipes too, so no late message is lost.
      child.on('close', (code, signal) => {
        clearTimeout(this.killTimer);
        this.child = undefined;
        if (stalled && !final) {
          // The trainer cannot mark its own run any more: say in run.json why it ended.
          const runDir = this.runDir;
          final = { kind: 'error', message: stalled, runDir };
          const marked = runDir ? markRunFailed(runDir, stalled).catch(() => undefined) : Promise.resolve();
          void marked.then(() => resolve(final!));
          return;
        }
        resolve(final ?? { kind: 'crashed', code, signal, runDir: this.runDir });
      });
    });
  }

  /** Asks the trainer to stop after the current batch; kills it if it has not ended after a grace period. */
  cancel(): void {
    if (!this.child) return;
    this.send({ type: 'cancel' });
    this.killTimer ??= setTimeout(() => this.kill(), CANCEL_GRACE_MS);
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  private send(command: TrainerCommand): void {
    if (this.child?.connected) this.child.send(command);
  }
}

/** What the trainer was last heard doing, for the message about a stall. */
function describeActivity(event: TrainEvent, previous: string): string {
  switch (event.type) {
    case 'phase':
      return `in phase ${event.phase} (${event.done}/${event.total})`;
    case 'progress':
      return `training epoch ${event.epoch}, batch ${event.batch}/${event.batches}`;
    case 'epoch':
      return `finishing epoch ${event.record.epoch}`;
    default:
      return previous;
  }
}
