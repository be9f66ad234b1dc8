/**
 * Which Python runs the PyTorch engine, and whether it can: a probe (`import torch, torchvision`, versions,
 * devices) in a child process, bounded in time so a hung interpreter never holds anything up, and cached per
 * interpreter path and modification time: in memory for every answer, and on disk
 * (`<user cache>/leukemia-audit/interpreters.json`) for working interpreters, so each training run (a fresh
 * trainer process) does not pay seconds for `import torch` again. A `pip install` or `pip uninstall` into the
 * environment changes neither key: a cached failure lasts only as long as the process, and a cached success
 * holds only while the torch and torchvision files the probe imported are still there, unchanged — else the
 * interpreter is probed again (and under `auto` the run falls back to the embedded engine).
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { defaultImageCacheDir } from '../data/cache.js';
import { writeFileAtomic } from '../fsAtomic.js';

export const MIN_TORCH_VERSION: readonly [number, number] = [1, 13];
/**
 * `import torch` takes 1–2 s on an idle laptop, but 5 s on this shared 2-core machine under load: the bound
 * is generous enough not to reject a working interpreter, and still ends a hung one.
 * $LEUKEMIA_AUDIT_PROBE_TIMEOUT_MS overrides it (the tests, on a CI machine under load).
 */
export const PROBE_TIMEOUT_MS = Number(process.env.LEUKEMIA_AUDIT_PROBE_TIMEOUT_MS) || 30_000;

export interface TorchInterpreter {
  /** The executable as resolved (absolute). */
  python: string;
  pythonVersion: string;
  torch: string;
  torchvision: string;
  /** CUDA device names, in index order. */
  cuda: string[];
  mps: boolean;
  /** torch.distributed with the gloo backend (CPU processes). */
  distributed: boolean;
}

export type ProbeResult =
  | {
      ok: true;
      interpreter: TorchInterpreter;
      /** torch's and torchvision's `__init__.py` as imported: a remembered answer holds while these do. */
      modules: string[];
    }
  | { ok: false; python: string; reason: string };

/** A module file's identity: its path and modification time (a reinstall rewrites it, an uninstall removes it). */
interface ModuleStamp {
  path: string;
  mtimeMs: number;
}

/** A working interpreter as remembered on disk, with the module files its answer depends on. */
interface RememberedProbe extends TorchInterpreter {
  modules: ModuleStamp[];
}

/** How to choose an interpreter, for messages that must say it. */
export const SELECT_INTERPRETER_HINT =
  'select one with --python PATH (CLI), the leukemiaAudit.python setting, or the Python extension\'s "Python: Select Interpreter"; it needs torch >= 1.13 and torchvision';

const PROBE_SCRIPT = String.raw`
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import torch, torchvision
except Exception as error:
    out["error"] = type(error).__name__ + ": " + str(error)
else:
    out["torch"] = torch.__version__
    out["torchvision"] = torchvision.__version__
    out["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps is not None and mps.is_available())
    import torch.distributed as dist
    out["distributed"] = bool(dist.is_available() and dist.is_gloo_available())
    out["modules"] = [torch.__file__, torchvision.__file__]
print(json.dumps(out))
`;

/** A probe's answer with the stamps of its module files when they were read (none for a failure). */
interface Probed {
  result: ProbeResult;
  stamps?: ModuleStamp[];
}

const cache = new Map<string, Promise<Probed>>();

/**
 * Probes `python` (a path or a command name looked up on PATH); at most one probe per path+mtime per process
 * while a working answer's torch and torchvision files stay as they were.
 */
export async function probeInterpreter(python: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const resolved = await resolveExecutable(python);
  if (!resolved) return { ok: false, python, reason: `${python} was not found` };
  const { mtimeMs } = await stat(resolved.path);
  const key = `${resolved.path}\0${mtimeMs}`;
  let pending = cache.get(key);
  const earlier = await pending;
  if (earlier?.stamps && !(await stillInstalled(earlier.stamps))) pending = undefined;
  if (!pending) {
    pending = probeWithDiskCache(key, resolved.path, timeoutMs);
    cache.set(key, pending);
  }
  return (await pending).result;
}

const DISK_CACHE = join(dirname(defaultImageCacheDir()), 'interpreters.json');

async function probeWithDiskCache(key: string, python: string, timeoutMs: number): Promise<Probed> {
  const known = await readDiskCache();
  const remembered = known[key];
  if (
    remembered &&
    typeof remembered.torch === 'string' &&
    remembered.python === python &&
    (await stillInstalled(remembered.modules))
  ) {
    const { modules, ...interpreter } = remembered;
    return { result: { ok: true, interpreter, modules: modules.map((m) => m.path) }, stamps: modules };
  }
  const result = await runProbe(python, timeoutMs);
  const stamps = result.ok ? await stampsOf(result.modules) : undefined;
  // Remembered only with every module file stamped: without them a later uninstall could not be noticed.
  if (result.ok && stamps && stamps.length > 0) {
    const entry: RememberedProbe = { ...result.interpreter, modules: stamps };
    // Best effort: an unwritable cache folder only costs the next run another probe.
    await writeFileAtomic(DISK_CACHE, JSON.stringify({ ...known, [key]: entry }, null, 1)).catch(() => undefined);
  }
  return { result, stamps: stamps && stamps.length > 0 ? stamps : undefined };
}

/** The stamps of `paths`, or undefined when one of them cannot be read. */
async function stampsOf(paths: readonly string[]): Promise<ModuleStamp[] | undefined> {
  const stamps: ModuleStamp[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) return undefined;
    stamps.push({ path, mtimeMs: info.mtimeMs });
  }
  return stamps;
}

/** The remembered module files are still there with the same modification times. */
async function stillInstalled(stamps: unknown): Promise<boolean> {
  if (!Array.isArray(stamps) || stamps.length === 0) return false;
  for (const stamp of stamps as Partial<ModuleStamp>[]) {
    if (typeof stamp?.path !== 'string') return false;
    const info = await stat(stamp.path).catch(() => undefined);
    if (info?.mtimeMs !== stamp.mtimeMs) return false;
  }
  return true;
}

async function readDiskCache(): Promise<Record<string, RememberedProbe>> {
  try {
    const parsed = JSON.parse(await readFile(DISK_CACHE, 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

function runProbe(python: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolveProbe) => {
    execFile(
      python,
      ['-c', PROBE_SCRIPT],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 16 },
      (error, stdout, stderr) => {
        if (error && (error as { killed?: boolean }).killed)
          return resolveProbe({ ok: false, python, reason: `${python} did not answer within ${timeoutMs / 1000} s` });
        let answer: Record<string, unknown>;
        try {
          answer = JSON.parse(stdout.trim().split('\n').pop() ?? '');
        } catch {
          const detail = lastLines(stderr, 2) || (error as Error | null)?.message || 'no output';
          return resolveProbe({ ok: false, python, reason: `${python} could not run the probe: ${detail}` });
        }
        resolveProbe(judgeProbe(python, answer));
      },
    );
  });
}

/** The probe's JSON, field by field. */
export function judgeProbe(python: string, answer: Record<string, unknown>): ProbeResult {
  if (typeof answer.error === 'string') return { ok: false, python, reason: `${python}: ${answer.error}` };
  const torch = typeof answer.torch === 'string' ? answer.torch : undefined;
  const torchvision = typeof answer.torchvision === 'string' ? answer.torchvision : undefined;
  if (!torch || !torchvision)
    return { ok: false, python, reason: `${python}: the probe did not report torch versions` };
  if (!atLeast(torch, MIN_TORCH_VERSION))
    return {
      ok: false,
      python,
      reason: `${python} has torch ${torch}; the engine needs ${MIN_TORCH_VERSION.join('.')} or later`,
    };
  return {
    ok: true,
    modules: Array.isArray(answer.modules) ? answer.modules.filter((m) => typeof m === 'string') : [],
    interpreter: {
      python,
      pythonVersion: String(answer.python ?? ''),
      torch,
      torchvision,
      cuda: Array.isArray(answer.cuda) ? answer.cuda.map(String) : [],
      mps: answer.mps === true,
      distributed: answer.distributed === true,
    },
  };
}

function atLeast(version: string, [major, minor]: readonly [number, number]): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match) return false;
  const [a, b] = [Number(match[1]), Number(match[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * The interpreters to try, in order: an explicit one (flag or setting) alone, else the Python extension's
 * selection, else python3 and python on PATH.
 */
export function interpreterCandidates(explicit: string | undefined, fromPythonExtension?: string): string[] {
  if (explicit) return [explicit];
  return [...(fromPythonExtension ? [fromPythonExtension] : []), 'python3', 'python'];
}

/** The first usable candidate, or every candidate's reason for failing. */
export async function findTorchInterpreter(
  candidates: readonly string[],
): Promise<{ interpreter?: TorchInterpreter; rejected: string[] }> {
  const rejected: string[] = [];
  for (const candidate of candidates) {
    const result = await probeInterpreter(candidate);
    if (result.ok) return { interpreter: result.interpreter, rejected };
    rejected.push(result.reason);
  }
  return { rejected };
}

async function resolveExecutable(name: string): Promise<{ path: string } | undefined> {
  const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() ?? false;
  if (isAbsolute(name) || name.includes('/') || name.includes('\\'))
    return (await isFile(name)) ? { path: name } : undefined;
  const extensions = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    if (!folder) continue;
    for (const extension of extensions) {
      const path = join(folder, name + extension);
      if (await isFile(path)) return { path };
    }
  }
  return undefined;
}

export function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
