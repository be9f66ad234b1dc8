/**
 * An evaluation seen from the extension host: fork the trainer (`dist/trainer.js`), send one `evaluate`
 * request, and turn every way it can end into one outcome. Inference over a whole dataset loads tfjs and
 * decodes every image: it never runs in the extension host. No `vscode` import: tests drive it directly.
 */
import type { EvaluatePhase } from '../../core/evaluate/evaluate.js';
import type { RunFile } from '../../core/run/runFile.js';
import { parseTrainerMessage, type EvaluateRequest, type TrainerCommand } from '../../protocol/trainer.js';
import { collectOutput, forkNode, watchHeartbeat } from '../childProcess.js';

export type EvaluateOutcome =
  { kind: 'evaluated'; runDir: string; run: RunFile } | { kind: 'cancelled' } | { kind: 'error'; message: string };

export interface EvaluateHooks {
  onProgress?(phase: EvaluatePhase, done: number, total: number): void;
  /** Lines the child printed: warnings (skipped images) and, on a crash, what it said. */
  onOutput?(line: string): void;
  /** Aborting asks the child to stop; it is killed if it has not ended after a grace period. */
  signal?: AbortSignal;
}

const CANCEL_GRACE_MS = 10_000;
const STALL_SECONDS = 120;

export function runEvaluateProcess(
  script: string,
  request: EvaluateRequest,
  hooks: EvaluateHooks = {},
): Promise<EvaluateOutcome> {
  return new Promise((resolve) => {
    if (hooks.signal?.aborted) return resolve({ kind: 'cancelled' });
    const child = forkNode(script);
    const send = (command: TrainerCommand) => {
      if (child.connected) child.send(command);
    };
    let final: EvaluateOutcome | undefined;
    const { output, last } = collectOutput(child, hooks.onOutput);
    // A trainer busy in a long synchronous step still beats every few seconds; silence means it is stuck.
    watchHeartbeat(child, STALL_SECONDS, (what) => {
      final ??= { kind: 'error', message: `the evaluation process stopped responding (${what}) and was killed` };
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
          send({ type: 'evaluate', request });
          break;
        case 'heartbeat':
          break;
        case 'evaluation-progress':
          hooks.onProgress?.(message.phase, message.done, message.total);
          break;
        case 'evaluated':
          final = { kind: 'evaluated', runDir: message.runDir, run: message.run };
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
    child.on(
      'error',
      (error) => (final ??= { kind: 'error', message: `the evaluation could not run: ${error.message}` }),
    );
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
          `the evaluation process ${signal ? `was stopped by ${signal}` : `exited with code ${code}`} without a result`,
      });
    });
  });
}
