/**
 * torchvision's ImageNet ResNet-18 weights (`ResNet18_Weights.IMAGENET1K_V1`), fetched once and then used
 * offline.
 *
 * Integrity follows torchvision's own convention: the file name carries the first hex digits of the
 * file's SHA-256 (`resnet18-f37072fd.pth` → `f37072fd…`), and `torch.hub.load_state_dict_from_url(…,
 * check_hash=True)` checks exactly that prefix (its HASH_REGEX `-([a-f0-9]*)\.`). We check it on every
 * download and every use of a cached copy; for the official file we also pin the full digest. A file is
 * written to a temporary name in the cache folder and renamed only once verified, so the cache never holds
 * a partial or corrupt download. Eight hex digits catch any corruption or truncation but are no defence
 * against a deliberately forged file — which could still only supply wrong numbers: `.pth` files are read
 * by the safe unpickler in `pickle.ts`, never executed. So a URL override (`LEUKEMIA_AUDIT_WEIGHTS_URL`) for a
 * file we do not pin needs its full SHA-256 as well (`LEUKEMIA_AUDIT_WEIGHTS_SHA256`), and no download may
 * exceed `MAX_DOWNLOAD_BYTES`.
 *
 * Offline, the download fails within `connectTimeoutMs` with a message that says where to put the file
 * and how to fetch it on another machine. A copy already in PyTorch's own hub cache is used as it is.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { defaultImageCacheDir } from '../data/cache.js';

export const IMAGENET_WEIGHTS_URL = 'https://download.pytorch.org/models/resnet18-f37072fd.pth';
/** Overrides the download URL (mirrors, tests); its file name must carry a hash prefix as torchvision's do. */
export const WEIGHTS_URL_ENV = 'LEUKEMIA_AUDIT_WEIGHTS_URL';
/**
 * The full SHA-256 of the file an overriding URL serves: required unless the file is one we pin. A name's
 * eight hex digits catch corruption, not a forged file, and an override is exactly where one could come from.
 */
export const WEIGHTS_SHA256_ENV = 'LEUKEMIA_AUDIT_WEIGHTS_SHA256';
/** torchvision's file is 46.8 MB; a server that sends more is not sending it (and would fill the disk). */
export const MAX_DOWNLOAD_BYTES = 128 * 2 ** 20;

/**
 * Full digests of files we know, by file name. resnet18-f37072fd.pth (46,830,571 bytes) as recorded
 * independently by several projects that pin it; it starts with the prefix in its name, as it must.
 */
const PINNED_SHA256: ReadonlyMap<string, string> = new Map([
  ['resnet18-f37072fd.pth', 'f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec'],
]);

/** torch.hub's HASH_REGEX; fewer than 8 digits would verify next to nothing, so such names are refused. */
const HASH_IN_NAME = /-([a-f0-9]*)\./;
const MIN_HASH_PREFIX = 8;
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
const PROGRESS_INTERVAL_MS = 100;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** `<user cache folder>/leukemia-audit/weights`, next to the image cache and chosen by the same rules. */
export function defaultWeightsCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  return path.join(path.dirname(defaultImageCacheDir(env, platform)), 'weights');
}

/** PyTorch's hub checkpoint folder (`torch.hub.get_dir()`): $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch. */
export function torchHubCheckpointsDir(env: NodeJS.ProcessEnv = process.env): string {
  const torchHome = env.TORCH_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'torch');
  return path.join(torchHome, 'hub', 'checkpoints');
}

export interface ImagenetWeightsOptions {
  /** Default: $LEUKEMIA_AUDIT_WEIGHTS_URL, else IMAGENET_WEIGHTS_URL. https only (http only to 127.0.0.1, for tests). */
  url?: string;
  /** Largest download accepted (default MAX_DOWNLOAD_BYTES). */
  maxBytes?: number;
  /** Full SHA-256 of what `url` serves (default $LEUKEMIA_AUDIT_WEIGHTS_SHA256); required for a file we do not pin. */
  sha256?: string;
  /** Default: `defaultWeightsCacheDir(env)`. */
  cacheDir?: string;
  /** Environment for the URL override and the cache folders (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Bytes received so far and the total when the server says it; at most every 100 ms and once at the end. */
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** Until the response headers arrive: DNS, connection, TLS, server (default 15 s). */
  connectTimeoutMs?: number;
  /** Longest silence while the body streams (default 60 s). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface CachedWeightsFile {
  file: string;
  sha256: string;
  /** False when a verified copy was already on disk. */
  downloaded: boolean;
}

/** The download failed or was corrupt; nothing was left in the cache. The message says how to install the file by hand. */
export class WeightsDownloadError extends Error {
  constructor(
    message: string,
    /** Where the verified file is expected. */
    readonly expectedFile: string,
    readonly url: string,
  ) {
    super(message);
    this.name = 'WeightsDownloadError';
  }
}

interface Expectation {
  url: URL;
  fileName: string;
  sha256Prefix: string;
  sha256?: string;
}

/** Whether `sha256` is the file `expectation` describes. */
function verifies(sha256: string, expectation: Expectation): boolean {
  return (
    sha256.startsWith(expectation.sha256Prefix) && (expectation.sha256 === undefined || sha256 === expectation.sha256)
  );
}

function expectedDigest(expectation: Expectation): string {
  return expectation.sha256 ?? `${expectation.sha256Prefix}…`;
}

function expectationFor(urlText: string, fullSha256: string | undefined): Expectation {
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new Error(`Weights URL "${urlText}" is not a URL`);
  }
  checkProtocol(url);
  const fileName = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  const prefix = HASH_IN_NAME.exec(fileName)?.[1] ?? '';
  if (prefix.length < MIN_HASH_PREFIX || fileName.includes(path.sep) || fileName.includes('/')) {
    throw new Error(
      `Weights URL ${url.href} names "${fileName}", which carries no SHA-256 prefix of at least ${MIN_HASH_PREFIX} hex digits ` +
        `(torchvision's convention, e.g. resnet18-f37072fd.pth); without it the download cannot be verified`,
    );
  }
  const pinned = PINNED_SHA256.get(fileName);
  if (pinned) return { url, fileName, sha256Prefix: prefix, sha256: pinned };
  const digest = fullSha256?.trim().toLowerCase();
  if (!digest || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new Error(
      `Weights URL ${url.href} serves ${fileName}, whose full SHA-256 leukemia-audit does not know: set ${WEIGHTS_SHA256_ENV} ` +
        `to its 64 hex digits${digest ? ` (got "${fullSha256}")` : ''} (sha256sum ${fileName} on a machine you trust)`,
    );
  }
  if (!digest.startsWith(prefix))
    throw new Error(`${WEIGHTS_SHA256_ENV} ${digest} does not start with ${prefix}, the prefix in ${fileName}`);
  return { url, fileName, sha256Prefix: prefix, sha256: digest };
}

/** https everywhere; plain http only to 127.0.0.1, which is what the tests serve from. */
function checkProtocol(url: URL): void {
  if (url.protocol === 'https:' || (url.protocol === 'http:' && url.hostname === '127.0.0.1')) return;
  throw new Error(`Refusing to download weights from ${url.href}: only https URLs are allowed`);
}

/**
 * The path of a verified copy of the ImageNet weights: the cache's, PyTorch's hub cache's, or a fresh
 * download into the cache.
 */
export async function ensureImagenetWeights(options: ImagenetWeightsOptions = {}): Promise<CachedWeightsFile> {
  const env = options.env ?? process.env;
  const expectation = expectationFor(
    options.url ?? env[WEIGHTS_URL_ENV] ?? IMAGENET_WEIGHTS_URL,
    options.sha256 ?? env[WEIGHTS_SHA256_ENV],
  );
  const cacheDir = options.cacheDir ?? defaultWeightsCacheDir(env);
  const target = path.join(cacheDir, expectation.fileName);

  let corruptCopy: string | undefined;
  for (const candidate of [target, path.join(torchHubCheckpointsDir(env), expectation.fileName)]) {
    const sha256 = await sha256OfFile(candidate);
    if (sha256 === undefined) continue;
    if (verifies(sha256, expectation)) return { file: candidate, sha256, downloaded: false };
    corruptCopy ??= `${candidate} is there but its SHA-256 is ${sha256}, not ${expectedDigest(expectation)}`;
  }

  const fail = (problem: string): never => {
    throw new WeightsDownloadError(
      instructions(problem, expectation, target, corruptCopy, env),
      target,
      expectation.url.href,
    );
  };
  // A cancelled download is not a failure to explain: the caller's AbortError goes through unchanged.
  const failUnlessCancelled =
    (describe: (error: Error) => string) =>
    (error: Error): never => {
      if (options.signal?.aborted) throw error;
      return fail(describe(error));
    };
  await mkdir(cacheDir, { recursive: true });
  const temporary = path.join(
    cacheDir,
    `.${expectation.fileName}.${process.pid}.${randomBytes(4).toString('hex')}.download`,
  );
  try {
    const response = await getFollowingRedirects(expectation.url, options).catch(
      failUnlessCancelled((error) => error.message),
    );
    const sha256 = await saveBody(response, temporary, options).catch(
      failUnlessCancelled((error) => `the download broke off (${error.message})`),
    );
    if (!verifies(sha256, expectation))
      fail(
        `the downloaded file is corrupt: its SHA-256 is ${sha256}, not ${expectedDigest(expectation)}; it was discarded`,
      );
    await rename(temporary, target);
    return { file: target, sha256, downloaded: true };
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

function instructions(
  problem: string,
  expectation: Expectation,
  target: string,
  corruptCopy: string | undefined,
  env: NodeJS.ProcessEnv,
): string {
  return [
    `Cannot download the ImageNet ResNet-18 weights from ${expectation.url.href}: ${problem}.`,
    ...(corruptCopy ? [`(${corruptCopy}.)`] : []),
    'They are needed once; afterwards everything works offline. To install them by hand, download the file on any connected machine:',
    `  curl -L -o "${target}" ${expectation.url.href}`,
    `and put it at ${target} (file name ${expectation.fileName}; its SHA-256 must start with ${expectation.sha256Prefix}).`,
    `A verified copy in PyTorch's hub cache (${torchHubCheckpointsDir(env)}) is used as well.`,
  ].join('\n');
}

/** SHA-256 of a file, or undefined when there is no such file. */
async function sha256OfFile(file: string): Promise<string | undefined> {
  try {
    if (!(await stat(file)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function getFollowingRedirects(start: URL, options: ImagenetWeightsOptions): Promise<IncomingMessage> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    const response = await get(url, options);
    const status = response.statusCode ?? 0;
    if (status === 200) return response;
    response.resume(); // drain, so the socket is released
    const location = response.headers.location;
    if (!REDIRECT_STATUSES.has(status) || !location)
      throw new Error(`the server answered HTTP ${status} ${response.statusMessage ?? ''}`.trim());
    if (redirects >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    url = new URL(location, url);
    checkProtocol(url);
  }
}

/** One GET; rejects if the response headers do not arrive within the connect timeout. */
function get(url: URL, options: ImagenetWeightsOptions): Promise<IncomingMessage> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const request = client.get(
      url,
      { signal: options.signal, headers: { 'user-agent': 'leukemia-audit' } },
      (response) => {
        clearTimeout(timer);
        resolve(response);
      },
    );
    const timer = setTimeout(
      () => request.destroy(new Error(`no answer from ${url.host} within ${connectTimeoutMs / 1000} s (offline?)`)),
      connectTimeoutMs,
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
          ? new Error(`cannot resolve ${url.hostname} (offline?)`)
          : error,
      );
    });
  });
}

/** Streams the body into `file` (created exclusively, then fsynced) and returns its SHA-256. */
async function saveBody(response: IncomingMessage, file: string, options: ImagenetWeightsOptions): Promise<string> {
  const declared = Number(response.headers['content-length']);
  const total = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
  const maxBytes = options.maxBytes ?? MAX_DOWNLOAD_BYTES;
  const tooLarge = (bytes: number) =>
    new Error(`the server sends ${bytes} bytes or more, beyond the ${maxBytes} a ResNet-18 file can have`);
  if (total !== undefined && total > maxBytes) {
    response.destroy();
    throw tooLarge(total);
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  response.setTimeout(idleTimeoutMs, () => response.destroy(new Error(`no data for ${idleTimeoutMs / 1000} s`)));
  const hash = createHash('sha256');
  let received = 0;
  let reported = 0;
  const handle = await open(file, 'wx');
  try {
    for await (const chunk of response) {
      const bytes = chunk as Buffer;
      if (received + bytes.length > maxBytes) {
        response.destroy();
        throw tooLarge(received + bytes.length);
      }
      hash.update(bytes);
      await handle.write(bytes);
      received += bytes.length;
      if (options.onProgress && performance.now() - reported >= PROGRESS_INTERVAL_MS) {
        reported = performance.now();
        options.onProgress(received, total);
      }
    }
    // A closed connection can end the body early without an error; the declared length catches it.
    if (total !== undefined && received !== total) throw new Error(`received ${received} of ${total} bytes`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  options.onProgress?.(received, total);
  return hash.digest('hex');
}
