// Whether the PyTorch engine's tests can run: /usr/bin/python3 with torch >= 1.13 and torchvision. Outside CI a
// missing torch skips them with the reason printed; when references are required (the one switch,
// `referencesRequired` in ./python.ts: .ci/run, which installs Debian's torch, or a CI service) it fails them,
// so a broken install cannot turn the suite green.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { probeInterpreter, type TorchInterpreter } from '../../src/core/torch/interpreter.js';
import { PYTHON, referencesRequired, requiredBecause } from './python.js';

/** The interpreter, or the reason the caller must skip; throws when references are required. */
export async function torchForTests(
  python: string = PYTHON,
): Promise<{ interpreter: TorchInterpreter } | { skip: string }> {
  // Generous: on a loaded CI machine `import torch` alone can take many seconds. The result is cached for the
  // engine's own probe in this process.
  const result = await probeInterpreter(python, 120_000);
  if (result.ok) return { interpreter: result.interpreter };
  const reason = `PyTorch engine not tested: ${result.reason}`;
  if (referencesRequired())
    throw new Error(`${reason} (${requiredBecause()}: CI must have Debian's python3-torch and python3-torchvision)`);
  process.stdout.write(`# ${reason}\n`);
  return { skip: reason };
}

/**
 * A fake interpreter in `folder`: answers the interpreter probe as a working torch would, then runs `onPlan`
 * (shell) when started on a plan of the bundled script — for the crash paths.
 */
export async function fakeTorchPython(folder: string, name: string, onPlan: string): Promise<string> {
  const file = join(folder, name);
  await writeFile(
    file,
    `#!/bin/sh
case "$*" in
  *train_resnet18.py*) ${onPlan} ;;
  *) echo '{"python": "3.11.0", "torch": "2.1.0", "torchvision": "0.16.0", "cuda": [], "mps": false, "distributed": true}' ;;
esac
`,
  );
  await chmod(file, 0o755);
  return file;
}
