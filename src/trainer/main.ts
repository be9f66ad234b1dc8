/**
 * The trainer child process: runs one training job for its parent (the extension host or a test) and
 * reports through the typed protocol. Exits when the job ends, or when the parent goes away.
 */
import { trainRun, TrainingCancelled } from '../core/train/train.js';
import { isTrainerCommand, type TrainerMessage } from './protocol.js';

const controller = new AbortController();
let runDir: string | null = null;
let busy = false;

function send(message: TrainerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function train(settings: Parameters<typeof trainRun>[0]): Promise<void> {
  busy = true;
  try {
    const run = await trainRun(
      settings,
      (event) => {
        if (event.type === 'started') runDir = event.runDir;
        void send({ type: 'event', event });
      },
      controller.signal,
    );
    await send({ type: 'result', runDir: runDir!, run });
  } catch (error) {
    if (error instanceof TrainingCancelled || controller.signal.aborted) await send({ type: 'cancelled', runDir });
    else
      await send({
        type: 'error',
        message: (error as Error).message ?? String(error),
        stack: (error as Error).stack,
        runDir,
      });
  } finally {
    process.disconnect?.();
    process.exit(0);
  }
}

if (!process.send) {
  process.stderr.write(
    'The leukemia-audit trainer is started by the extension (child_process.fork); use the leukemia-audit CLI instead.\n',
  );
  process.exit(2);
}

process.on('message', (message: unknown) => {
  if (!isTrainerCommand(message)) {
    void send({
      type: 'error',
      message: `The trainer received a message it does not understand: ${JSON.stringify(message).slice(0, 200)}`,
      runDir,
    });
    return;
  }
  if (message.type === 'cancel') controller.abort();
  else if (!busy) void train(message.settings);
});
// The parent died or closed the channel: stop at the next batch boundary instead of training for nobody.
process.on('disconnect', () => {
  controller.abort();
  if (!busy) process.exit(0);
});
void send({ type: 'ready', pid: process.pid });
