/**
 * A one-shot trainer job seen from the extension host — an evaluation or a batch-effect probe: fork the
 * trainer (`dist/trainer.js`), send one request, and turn every way it can end into one outcome. Both load
 * tfjs and run inference over every image of a dataset: they never run in the extension host. No `vscode`
 * import: tests drive it directly.
 */
import type { EvaluatePhase } from '../../core/evaluate/evaluate.js';
import type { ProbePhase } from '../../core/probe/probe.js';
import type { RunFile } from '../../core/run/runFile.js';
import {
  parseTrainerMessage,
  type EvaluateRequest,
  type ProbeRequest,
  type TrainerCommand,
} from '../../protocol/trainer.js';
import { collectOutput, forkNode, watchHeartbeat } from '../childProcess.js';

export type JobOutcome =
  { kind: 'done'; runDir: string; run: RunFile } | { kind: 'cancelled' } | { kind: 'error'; message: string };

export type EvaluateOutcome =
  { kind: 'evaluated'; runDir: string; run: RunFile } | { kind: 'cancelled' } | { kind: 'error'; message: string };

export interface JobHooks<Phase extends string> {
  onProgress?(phase: Phase, done: number, total: number, etaSeconds?: number): void;
  /** Lines the child printed: warnings (skipped images) and, on a crash, what it said. */
  onOutput?(line: string): void;
  /** Aborting asks the child to stop; it is killed if it has not ended after a grace period. */
  signal?: AbortSignal;
}

export type EvaluateHooks = JobHooks<EvaluatePhase>;

const CANCEL_GRACE_MS = 10_000;
const STALL_SECONDS = 120;

export async function runEvaluateProcess(
  script: string,
  request: EvaluateRequest,
  hooks: EvaluateHooks = {},
): Promise<EvaluateOutcome> {
  const outcome = await runJobProcess(script, { type: 'evaluate', request }, 'evaluation', hooks);
  return outcome.kind === 'done' ? { kind: 'evaluated', runDir: outcome.runDir, run: outcome.run } : outcome;
}

export function runProbeProcess(
  script: string,
  request: ProbeRequest,
  hooks: JobHooks<ProbePhase> = {},
): Promise<JobOutcome> {
  return runJobProcess(script, { type: 'probe', request }, 'probe', hooks);
}

function runJobProcess<Phase extends string>(
  script: string,
  command: Extract<TrainerCommand, { type: 'evaluate' | 'probe' }>,
  what: string,
  hooks: JobHooks<Phase>,
): Promise<JobOutcome> {
  return new Promise((resolve) => {
    if (hooks.signal?.aborted) return resolve({ kind: 'cancelled' });
    const child = forkNode(script);
    const send = (message: TrainerCommand) => {
      if (child.connected) child.send(message);
    };
    let final: JobOutcome | undefined;
    const { output, last } = collectOutput(child, hooks.onOutput);
    // A trainer busy in a long synchronous step still beats every few seconds; silence means it is stuck.
    watchHeartbeat(child, STALL_SECONDS, (stalled) => {
      final ??= { kind: 'error', message: `the ${what} process stopped responding (${stalled}) and was killed` };
    });
    let killTimer: NodeJS.Timeout | undefined;
    const cancel = () => {
      send({ type: 'cancel' });
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS);
    };
    hooks.signal?.addEventListener('abort', cancel, { once: true });
    child.on('message', (raw: unknown) => {
      const message = parseTrainerMessage(raw);
      switch (message?.type) {
        case 'ready':
          send(command);
          break;
        case 'heartbeat':
          break;
        case 'evaluation-progress':
        case 'probe-progress':
          hooks.onProgress?.(message.phase as Phase, message.done, message.total, message.etaSeconds);
          break;
        case 'evaluated':
        case 'probed':
          final = { kind: 'done', runDir: message.runDir, run: message.run };
          break;
        case 'cancelled':
          final = { kind: 'cancelled' };
          break;
        case 'error':
          if (message.stack) hooks.onOutput?.(message.stack);
          final = { kind: 'error', message: message.message };
          break;
        default:
          output(`Ignored a message the extension does not understand: ${JSON.stringify(raw).slice(0, 200)}`);
      }
    });
    child.on('error', (error) => (final ??= { kind: 'error', message: `the ${what} could not run: ${error.message}` }));
    // 'close', not 'exit': it waits for the IPC channel and pipes too, so no late message is lost.
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      hooks.signal?.removeEventListener('abort', cancel);
      if (final) return resolve(final);
      if (hooks.signal?.aborted) return resolve({ kind: 'cancelled' });
      resolve({
        kind: 'error',
        message:
          last() ||
          `the ${what} process ${signal ? `was stopped by ${signal}` : `exited with code ${code}`} without a result`,
      });
    });
  });
}
