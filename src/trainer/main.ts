/**
 * The trainer child process: runs one job — a training run, an evaluation or a probe — for its parent (the extension
 * host or a test) and
 * reports through the typed protocol. Exits when the job ends, or when the parent goes away.
 */
import { evaluateModel } from '../core/evaluate/evaluate.js';
import { parseGroupChoice } from '../core/probe/groupChoice.js';
import { probeDataset } from '../core/probe/probe.js';
import { TrainingCancelled } from '../core/train/engine.js';
import { trainRun } from '../core/train/train.js';
import type { TrainSettings } from '../core/train/settings.js';
import { isTrainerCommand, type EvaluateRequest, type ProbeRequest, type TrainerMessage } from '../protocol/trainer.js';
import { errorMessage, exitChild, notUnderstood, requireParent, sendToParent } from './parent.js';

const controller = new AbortController();
let busy = false;
const send = (message: TrainerMessage) => sendToParent(message);

async function train(settings: TrainSettings): Promise<void> {
  busy = true;
  try {
    const run = await trainRun(settings, (event) => void send({ type: 'event', event }), controller.signal);
    await send({ type: 'result', run });
  } catch (error) {
    if (error instanceof TrainingCancelled || controller.signal.aborted) await send({ type: 'cancelled' });
    else await send(errorMessage(error));
  } finally {
    exitChild();
  }
}

/** A job that ends in one answer (evaluation, probe): its result, `cancelled` or `error`, then the exit. */
async function oneShot(job: () => Promise<TrainerMessage>): Promise<void> {
  busy = true;
  try {
    await send(await job());
  } catch (error) {
    await send(controller.signal.aborted ? { type: 'cancelled' } : errorMessage(error));
  } finally {
    exitChild();
  }
}

const logToStderr = (level: string, message: string) => process.stderr.write(`${level}: ${message}\n`);

function evaluate(request: EvaluateRequest): Promise<void> {
  return oneShot(async () => {
    const { runDir, run } = await evaluateModel({
      ...request,
      classMap: request.classMap ? new Map(Object.entries(request.classMap)) : undefined,
      signal: controller.signal,
      onProgress: (phase, done, total, etaSeconds) =>
        void send({ type: 'evaluation-progress', phase, done, total, etaSeconds }),
      onLog: logToStderr,
    });
    return { type: 'evaluated', runDir, run };
  });
}

function probe(request: ProbeRequest): Promise<void> {
  return oneShot(async () => {
    const { runDir, run } = await probeDataset({
      ...request,
      group: request.group === undefined ? undefined : parseGroupChoice(request.group),
      signal: controller.signal,
      onProgress: (phase, done, total, etaSeconds) =>
        void send({ type: 'probe-progress', phase, done, total, etaSeconds }),
      onLog: logToStderr,
    });
    return { type: 'probed', runDir, run };
  });
}

requireParent('trainer', 'use the leukemia-audit CLI instead');
process.on('message', (message: unknown) => {
  if (!isTrainerCommand(message)) {
    // Before a job, a command it cannot read is the job's one result; during one, the job's result is still to come.
    if (busy)
      void send({
        type: 'event',
        event: { type: 'log', level: 'warning', message: notUnderstood('trainer', message).message },
      });
    else void send(notUnderstood('trainer', message)).then(exitChild);
  } else if (message.type === 'cancel') controller.abort();
  else if (busy) return;
  else if (message.type === 'evaluate') void evaluate(message.request);
  else if (message.type === 'probe') void probe(message.request);
  else void train(message.settings);
});
// The parent died or closed the channel: stop at the next batch boundary instead of training for nobody.
process.on('disconnect', () => {
  controller.abort();
  if (!busy) process.exit(0);
});
void send({ type: 'ready', pid: process.pid });
