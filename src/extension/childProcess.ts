/**
 * How the extension host starts its Node child processes (the trainer, the audit child) and reads their
 * output. No `vscode` import: tests drive the same code outside VS Code.
 */
import { fork, type ChildProcess } from 'node:child_process';

/** Forks a bundled script with an IPC channel and piped output, as plain Node even inside VS Code. */
export function forkNode(script: string, args: string[] = []): ChildProcess {
  return fork(script, args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // The extension host may run under a debugger; the child must not try to open the same port.
    execArgv: [],
    // Inside VS Code, process.execPath is the Electron binary: run it as plain Node.
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
}

/** Calls `onLine` with every complete line of a child's output; progress bars redrawn with \r keep their last state. */
export function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const last = line.split('\r').pop()!.trimEnd();
      if (last) onLine(last);
    }
  });
  stream.on('end', () => {
    const last = pending.split('\r').pop()!.trimEnd();
    if (last) onLine(last);
  });
}

/**
 * A child that sends nothing — not even its heartbeat, which it sends every few seconds whenever its main
 * thread is free — for `stallSeconds` is stuck (an endless synchronous loop, a stopped process): `onStall`
 * is called once and the child is killed. Any message counts as a sign of life.
 */
export function watchHeartbeat(child: ChildProcess, stallSeconds: number, onStall: (message: string) => void): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      onStall(`no heartbeat for ${stallSeconds} s`);
      child.kill('SIGKILL');
    }, stallSeconds * 1000);
  };
  arm();
  child.on('message', arm);
  child.once('close', () => clearTimeout(timer));
}

/**
 * Forwards a child's stdout and stderr lines to `onLine` and keeps the last three: when the child dies
 * without a message, they are what it said about why.
 */
export function collectOutput(
  child: ChildProcess,
  onLine?: (line: string) => void,
): { output(line: string): void; last(): string } {
  const recent: string[] = [];
  const output = (line: string) => {
    recent.push(line);
    if (recent.length > 3) recent.shift();
    onLine?.(line);
  };
  forwardLines(child.stdout, output);
  forwardLines(child.stderr, output);
  return { output, last: () => recent.join(' ') };
}
