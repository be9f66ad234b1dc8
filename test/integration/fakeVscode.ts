/**
 * A small in-process stand-in for the `vscode` API: enough of it, behaving enough like VS Code, to activate the
 * real extension bundle under Node's test runner and watch what it does — diagnostics published, commands run,
 * webviews created, messages shown. It is not VS Code: `npm run test:integration` runs the real thing.
 */
import Module from 'node:module';
import { EventEmitter as NodeEmitter } from 'node:events';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

type Listener<T> = (value: T) => unknown;
const disposable = { dispose() {} };

export class EventEmitter<T> {
  private readonly listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>) => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };
  fire(value: T) {
    for (const l of this.listeners) l(value);
  }
  dispose() {
    this.listeners.clear();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
    private readonly raw?: string,
  ) {}
  static file(p: string) {
    return new Uri('file', path.resolve(p));
  }
  static parse(s: string) {
    return s.startsWith('file://') ? Uri.file(fileURLToPath(s.split('#')[0])) : new Uri(s.split(':')[0], s, s);
  }
  static joinPath(base: Uri, ...parts: string[]) {
    return Uri.file(path.join(base.fsPath, ...parts));
  }
  get path() {
    return this.fsPath;
  }
  toString() {
    return this.raw ?? pathToFileURL(this.fsPath).href;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c!, d!) : (b as Position);
  }
  isEqual(other: Range) {
    return (
      this.start.line === other.start.line &&
      this.start.character === other.start.character &&
      this.end.line === other.end.line &&
      this.end.character === other.end.character
    );
  }
}

export class Diagnostic {
  source?: string;
  code?: string;
  relatedInformation?: unknown[];
  constructor(
    readonly range: Range,
    readonly message: string,
    readonly severity: number,
  ) {}
}

export class DiagnosticRelatedInformation {
  constructor(
    readonly location: unknown,
    readonly message: string,
  ) {}
}
export class Location {
  constructor(
    readonly uri: Uri,
    readonly range: unknown,
  ) {}
}
export class CodeAction {
  diagnostics?: unknown[];
  isPreferred?: boolean;
  edit?: WorkspaceEdit;
  constructor(
    readonly title: string,
    readonly kind: unknown,
  ) {}
}
export class WorkspaceEdit {
  readonly edits: { uri: Uri; range: Range; newText: string }[] = [];
  replace(uri: Uri, range: Range, newText: string) {
    this.edits.push({ uri, range, newText });
  }
}
export class RelativePattern {
  constructor(
    readonly base: Uri,
    readonly pattern: string,
  ) {}
}
export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel() {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose() {}
}

export class DiagnosticCollection {
  readonly entries = new Map<string, { uri: Uri; diagnostics: Diagnostic[] }>();
  constructor(readonly name: string) {}
  set(uri: Uri, diagnostics: Diagnostic[]) {
    this.entries.set(uri.toString(), { uri, diagnostics });
  }
  delete(uri: Uri) {
    this.entries.delete(uri.toString());
  }
  forEach(fn: (uri: Uri, diagnostics: Diagnostic[]) => void) {
    for (const { uri, diagnostics } of [...this.entries.values()]) fn(uri, diagnostics);
  }
  get(uri: Uri) {
    return this.entries.get(uri.toString())?.diagnostics;
  }
  dispose() {}
}

export interface FakeWebviewPanel {
  viewType: string;
  title: string;
  /** The options it was created with (localResourceRoots, …). */
  options?: unknown;
  html: string;
  posted: unknown[];
  receive(message: unknown): void;
  dispose(): void;
}

/** Globs as the extension writes them: `**`, `*`, `{a,b}`. */
function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (glob.startsWith('**/', i)) {
      out += '(?:.*/)?';
      i += 2;
    } else if (glob.startsWith('**', i)) {
      out += '.*';
      i += 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '{') out += '(?:';
    else if (c === '}') out += ')';
    else if (c === ',') out += '|';
    else out += c.replace(/[.+^$()|[\]\\?]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === '.git') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else out.push(full);
  }
  return out;
}

export interface FakeOptions {
  workspaceFolder: string;
  configuration?: Record<string, unknown>;
  /** Answers the extension's questions: return a button label, an item, or undefined. */
  answer?: (kind: 'warning' | 'info' | 'error' | 'quickPick', message: string, options: unknown[]) => unknown;
  /** Workspace trust (default trusted). */
  trusted?: boolean;
}

export function createFakeVscode(options: FakeOptions) {
  const collections: DiagnosticCollection[] = [];
  const commands = new Map<string, (...args: unknown[]) => unknown>();
  const messages: { kind: string; message: string; detail?: string; buttons: string[] }[] = [];
  const panels: FakeWebviewPanel[] = [];
  const logLines: string[] = [];
  const contextKeys = new Map<string, unknown>();
  const serializers = new Map<string, { deserializeWebviewPanel(panel: unknown, state: unknown): Promise<void> }>();
  const workspaceFolder = {
    uri: Uri.file(options.workspaceFolder),
    name: path.basename(options.workspaceFolder),
    index: 0,
  };
  const noEvent = () => disposable;
  const watcher = () => ({ onDidCreate: noEvent, onDidChange: noEvent, onDidDelete: noEvent, dispose() {} });
  const output = Object.fromEntries(
    ['info', 'warn', 'error', 'debug', 'trace', 'appendLine'].map((level) => [
      level,
      (line: string) => logLines.push(`[${level}] ${line}`),
    ]),
  );
  const message =
    (kind: 'warning' | 'info' | 'error') =>
    async (text: string, ...rest: unknown[]) => {
      const modal = typeof rest[0] === 'object' && rest[0] !== null ? (rest.shift() as { detail?: string }) : undefined;
      const buttons = rest as string[];
      messages.push({ kind, message: text, detail: modal?.detail, buttons });
      return options.answer?.(kind, text, buttons);
    };

  const vscode = {
    Uri,
    Position,
    Range,
    Diagnostic,
    DiagnosticRelatedInformation,
    Location,
    CodeAction,
    WorkspaceEdit,
    RelativePattern,
    CancellationTokenSource,
    EventEmitter,
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
    CodeActionKind: { QuickFix: { value: 'quickfix' } },
    StatusBarAlignment: { Left: 1, Right: 2 },
    ViewColumn: { Active: -1, Beside: -2, One: 1 },
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    QuickPickItemKind: { Separator: -1, Default: 0 },
    NotebookCellKind: { Markup: 1, Code: 2 },
    languages: {
      createDiagnosticCollection: (name: string) => {
        const c = new DiagnosticCollection(name);
        collections.push(c);
        return c;
      },
      registerCodeActionsProvider: () => disposable,
    },
    workspace: {
      workspaceFolders: [workspaceFolder],
      isTrusted: options.trusted ?? true,
      textDocuments: [] as unknown[],
      notebookDocuments: [] as unknown[],
      getWorkspaceFolder: (uri: Uri) => (uri.fsPath.startsWith(options.workspaceFolder) ? workspaceFolder : undefined),
      asRelativePath: (p: string) => path.relative(options.workspaceFolder, p),
      getConfiguration: () => ({ get: (key: string) => options.configuration?.[key] }),
      createFileSystemWatcher: watcher,
      findFiles: async (include: string, exclude: string | undefined, max?: number) => {
        const includeRe = globToRegExp(include);
        const excludeRe = exclude ? globToRegExp(exclude) : undefined;
        const found = walk(options.workspaceFolder)
          .map((f) => path.relative(options.workspaceFolder, f).split(path.sep).join('/'))
          .filter((f) => includeRe.test(f) && !excludeRe?.test(f));
        return found.slice(0, max).map((f) => Uri.file(path.join(options.workspaceFolder, f)));
      },
      onDidOpenTextDocument: noEvent,
      onDidChangeTextDocument: noEvent,
      onDidCloseTextDocument: noEvent,
      onDidSaveTextDocument: noEvent,
      onDidOpenNotebookDocument: noEvent,
      onDidChangeNotebookDocument: noEvent,
      onDidCloseNotebookDocument: noEvent,
      onDidChangeWorkspaceFolders: noEvent,
      onDidGrantWorkspaceTrust: noEvent,
      onDidChangeConfiguration: noEvent,
    },
    window: {
      createOutputChannel: () => ({ ...output, show() {}, dispose() {} }),
      createStatusBarItem: () => ({ show() {}, hide() {}, dispose() {} }),
      registerWebviewPanelSerializer: (
        viewType: string,
        serializer: { deserializeWebviewPanel(panel: unknown, state: unknown): Promise<void> },
      ) => (serializers.set(viewType, serializer), disposable),
      showWarningMessage: message('warning'),
      showInformationMessage: message('info'),
      showErrorMessage: message('error'),
      showQuickPick: async (items: unknown[], opts: { title?: string }) =>
        options.answer?.('quickPick', opts?.title ?? '', items),
      showOpenDialog: async () => undefined,
      showSaveDialog: async () => undefined,
      withProgress: (_: unknown, task: (progress: { report(v: unknown): void }, token: unknown) => unknown) =>
        task({ report() {} }, new CancellationTokenSource().token),
      createWebviewPanel: (
        viewType: string,
        title: string,
        _column?: unknown,
        options?: unknown,
      ): FakeWebviewPanel & Record<string, unknown> => {
        const received = new NodeEmitter();
        const panel: FakeWebviewPanel & Record<string, unknown> = {
          viewType,
          title,
          options,
          html: '',
          posted: [],
          receive: (m: unknown) => received.emit('message', m),
          dispose: () => received.emit('dispose'),
          reveal() {},
          onDidDispose: (l: () => void) => (received.on('dispose', l), disposable),
          webview: {
            cspSource: 'vscode-webview://fake',
            options: {},
            asWebviewUri: (uri: Uri) => ({ toString: () => `vscode-webview://fake${uri.fsPath}` }),
            postMessage: async (m: unknown) => (panel.posted.push(m), true),
            onDidReceiveMessage: (l: (m: unknown) => void) => (received.on('message', l), disposable),
            set html(value: string) {
              panel.html = value;
            },
            get html() {
              return panel.html;
            },
          },
        };
        panels.push(panel);
        return panel;
      },
    },
    commands: {
      registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => (
        commands.set(id, fn),
        { dispose: () => commands.delete(id) }
      ),
      executeCommand: async (id: string, ...args: unknown[]) => {
        if (id === 'setContext') return contextKeys.set(args[0] as string, args[1]);
        return commands.get(id)?.(...args);
      },
    },
    env: { openExternal: async () => true },
    // No other extension is installed (the Python extension in particular).
    extensions: { getExtension: () => undefined },
  };
  const state = new Map<string, unknown>();
  const extensionPath = path.resolve(__dirname, '..', '..');
  const context = {
    subscriptions: [] as { dispose(): void }[],
    extension: { packageJSON: { version: 'test' } },
    extensionPath,
    extensionUri: Uri.file(extensionPath),
    asAbsolutePath: (p: string) => path.join(extensionPath, p),
    workspaceState: {
      get: (k: string, d?: unknown) => (state.has(k) ? state.get(k) : d),
      update: async (k: string, v: unknown) => void state.set(k, v),
      keys: () => [...state.keys()],
    },
  };
  return { vscode, context, collections, commands, messages, panels, logLines, contextKeys, serializers };
}

/** Makes every later `require('vscode')` (the extension bundle's) return the stand-in. */
export function installFakeVscode(vscode: unknown): void {
  const moduleLoader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const load = moduleLoader._load;
  moduleLoader._load = (request: string, ...rest: unknown[]) =>
    request === 'vscode' ? vscode : load(request, ...rest);
}

/** Polls `probe` every 100 ms until it returns a value; a timeout names `what` and carries the extension's log. */
export async function until<T>(
  what: string,
  probe: () => T | undefined,
  logLines: readonly string[],
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logLines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
