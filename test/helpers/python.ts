// The system Python the PyTorch-reference tests run (torch and torchvision computed at test time), the
// reason a test gives when that Python cannot run its check, and the Python snippets the reference scripts
// share. A missing interpreter or module skips the check with a message saying what was not checked —
// unless references are required (`referencesRequired`: LEUKEMIA_AUDIT_REQUIRE_REFERENCES=1, set by .ci/run,
// or a CI service's CI variable), where it fails the test: in CI a missing reference is a failure, not a
// silent skip. Every test with a reference goes through this one switch. Any other failure of the script
// fails the test.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const PYTHON = '/usr/bin/python3';

/** Set to 1 by `.ci/run`: a reference (PyTorch, torchvision, scikit-learn) that cannot run fails the test. */
export const REQUIRE_REFERENCES_VARIABLE = 'LEUKEMIA_AUDIT_REQUIRE_REFERENCES';

/** Whether a missing reference fails: LEUKEMIA_AUDIT_REQUIRE_REFERENCES=1, or CI set (and not to false or 0). */
export function referencesRequired(): boolean {
  const ci = process.env.CI;
  return process.env[REQUIRE_REFERENCES_VARIABLE] === '1' || (ci !== undefined && !['', 'false', '0'].includes(ci));
}

/** What the failure says about why it is not a skip. */
export function requiredBecause(): string {
  return process.env[REQUIRE_REFERENCES_VARIABLE] === '1' ? `${REQUIRE_REFERENCES_VARIABLE}=1` : `CI=${process.env.CI}`;
}

/** The test context a reference test reports a skip on (node:test's TestContext). */
export interface SkippableTest {
  skip(message: string): void;
  diagnostic(message: string): void;
}

/**
 * What a reference test does with `reason` (why its reference could not run): skip with the reason in the
 * output, or, when references are required, throw so that the test fails.
 */
export function referenceUnavailable(t: SkippableTest, reason: string): void {
  if (referencesRequired()) throw new Error(`${reason} (${requiredBecause()}: a missing reference is a failure)`);
  t.diagnostic(reason);
  t.skip(reason);
}

const execFileAsync = promisify(execFile);

export interface PythonOptions {
  /** The script is killed (and the call rejects) after this long. */
  timeoutMs: number;
}

/** Runs `python3 -c script args…` single-threaded and returns its stdout; rejects as execFile does. */
export async function runPython(script: string, args: readonly string[], options: PythonOptions): Promise<string> {
  const { stdout } = await execFileAsync(PYTHON, ['-c', script, ...args], {
    timeout: options.timeoutMs,
    maxBuffer: 1 << 20,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  return stdout;
}

/**
 * Why `error` (from runPython) means Python cannot be used — "`purpose` not checked: /usr/bin/python3 does
 * not exist" or "… cannot import torch" — or undefined when it is a real failure of the script.
 */
export function pythonUnavailable(error: unknown, purpose: string): string | undefined {
  const { code, stderr } = error as { code?: string; stderr?: string };
  if (code === 'ENOENT') return `${purpose} not checked: ${PYTHON} does not exist`;
  const missing = /ModuleNotFoundError: No module named '([^']+)'/.exec(stderr ?? '');
  return missing ? `${purpose} not checked: ${PYTHON} cannot import ${missing[1]}` : undefined;
}

/** runPython's stdout, or the reason (from pythonUnavailable) that Python cannot run it; real failures reject. */
export async function runPythonIfAvailable(
  script: string,
  args: readonly string[],
  options: PythonOptions & { purpose: string },
): Promise<{ stdout: string } | { unavailable: string }> {
  try {
    return { stdout: await runPython(script, args, options) };
  } catch (error) {
    const unavailable = pythonUnavailable(error, options.purpose);
    if (unavailable) return { unavailable };
    throw error;
  }
}

/**
 * `save(path, tensors)` and `load(path)`: safetensors files of float32 and int64 tensors, with struct + json
 * because Debian's Python may lack the safetensors package. Interpolate at the top level of a script.
 */
export const SAFETENSORS_PY = String.raw`
import json, struct
import torch

def save(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype, numpy_type = {torch.float32: ('F32', '<f4'), torch.int64: ('I64', '<i8')}[t.dtype]
        raw = t.numpy().astype(numpy_type).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    encoded += b' ' * (-len(encoded) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)

def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    (length,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + length])
    header.pop('__metadata__', None)
    types = {'F32': torch.float32, 'I64': torch.int64}
    out = {}
    for name, info in header.items():
        begin, end = info['data_offsets']
        raw = bytearray(data[8 + length + begin:8 + length + end])
        out[name] = torch.frombuffer(raw, dtype=types[info['dtype']]).reshape(info['shape'])
    return out
`;

/**
 * `randomise_batchnorm(model, batches_tracked=None)`: every BatchNorm2d's weight ~ U(0.5, 1.5), bias ~ N(0, 0.1),
 * running mean ~ N(0, 0.1) and running variance ~ U(0.5, 2), drawn in module order from torch's global
 * generator (so seed first), and `num_batches_tracked` set to `batches_tracked` when given; returns the model,
 * still in the mode it was in. Untrained BatchNorm (weight 1, bias 0, mean 0, variance 1) would let a wrong
 * BatchNorm pass for a right one. Interpolate at the top level of a script.
 */
export const RANDOMISE_BATCHNORM_PY = String.raw`
import torch

def randomise_batchnorm(model, batches_tracked=None):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                if batches_tracked is not None:
                    module.num_batches_tracked.fill_(batches_tracked)
    return model
`;
