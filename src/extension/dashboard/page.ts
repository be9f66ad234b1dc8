/**
 * The dashboard page. Its script is a TypeScript function serialised with `toString()` into an inline script
 * carrying the page's nonce: type-checked like the rest, no second bundle, no `unsafe-inline`. It must not
 * refer to anything outside itself. Data reaches the DOM only through `textContent` and SVG attributes.
 */
import type { TrainingView } from '../../core/train/progress.js';
import type { DashboardRequest, DashboardUpdate } from '../../protocol/dashboard.js';

export const DASHBOARD_BODY = `
<header>
  <h1 id="title">Training</h1>
  <div class="actions">
    <button id="results" hidden>Open Results</button>
    <button id="log" class="secondary">Show Log</button>
    <button id="cancel">Cancel Training</button>
  </div>
</header>
<p id="structural" class="banner" hidden></p>
<p id="status" class="status" role="status" aria-live="polite"></p>
<progress id="progress" max="1" value="0"></progress>
<section class="tiles">
  <div><span class="label">Epoch</span><span id="epoch" class="value">–</span></div>
  <div><span class="label">Batch</span><span id="batch" class="value">–</span></div>
  <div><span class="label">Images/s</span><span id="speed" class="value">–</span></div>
  <div><span class="label">ETA</span><span id="eta" class="value">–</span></div>
  <div><span class="label">Loss (batch)</span><span id="loss" class="value">–</span></div>
  <div><span class="label">Backend</span><span id="backend" class="value">–</span></div>
</section>
<section class="charts">
  <figure><figcaption>Loss per epoch</figcaption><svg id="lossChart" viewBox="0 0 320 160" role="img" aria-label="Loss per epoch"></svg></figure>
  <figure><figcaption>Accuracy per epoch</figcaption><svg id="accuracyChart" viewBox="0 0 320 160" role="img" aria-label="Accuracy per epoch"></svg></figure>
</section>
<p class="legend"><span class="key train"></span>training <span class="key val"></span>validation <span class="key balanced"></span>validation, balanced</p>
<h2>Log</h2>
<ol id="logLines" class="log"></ol>
<p class="paths">Dataset <code id="dataset"></code> · labels <code id="labels"></code> · run <code id="runDir">–</code></p>`;

export const DASHBOARD_CSS = `
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px 16px; }
header { display: flex; justify-content: space-between; align-items: center; gap: 8px; flex-wrap: wrap; }
h1 { font-size: 1.3em; font-weight: 600; }
h2 { font-size: 1.05em; margin: 16px 0 4px; }
button { font: inherit; font-size: var(--vscode-font-size); line-height: 22px; background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: 1px solid var(--vscode-button-border, transparent); padding: 1px 13px; cursor: pointer; border-radius: 4px; }
button:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
button:disabled { opacity: 0.5; cursor: default; }
button:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: 2px; }
.banner { border-left: 4px solid var(--vscode-editorWarning-foreground); padding: 6px 10px; background: var(--vscode-inputValidation-warningBackground, transparent); }
.status { color: var(--vscode-descriptionForeground); }
progress { width: 100%; height: 6px; accent-color: var(--vscode-progressBar-background); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 8px; margin: 12px 0; }
.tiles div { border: 1px solid var(--vscode-panel-border, var(--vscode-contrastBorder, #8884)); padding: 6px 8px; display: flex; flex-direction: column; }
.label { font-size: 0.85em; color: var(--vscode-descriptionForeground); }
.value { font-size: 1.2em; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 12px; }
figure { margin: 0; }
figcaption { font-size: 0.9em; margin-bottom: 4px; }
svg { width: 100%; height: auto; border: 1px solid var(--vscode-panel-border, #8884); }
svg .axis { stroke: var(--vscode-descriptionForeground); stroke-width: 0.5; }
svg text { fill: var(--vscode-descriptionForeground); font-size: 9px; }
svg polyline { fill: none; stroke-width: 1.8; }
svg circle { stroke: none; }
:root { --series-train: var(--vscode-charts-blue, #3794ff); --series-val: var(--vscode-charts-orange, #d18616); --series-balanced: var(--vscode-charts-green, #89d185); }
polyline.train { stroke: var(--series-train); } circle.train { fill: var(--series-train); } .key.train { background: var(--series-train); }
polyline.val { stroke: var(--series-val); } circle.val { fill: var(--series-val); } .key.val { background: var(--series-val); }
polyline.balanced { stroke: var(--series-balanced); stroke-dasharray: 4 3; } circle.balanced { fill: var(--series-balanced); } .key.balanced { background: var(--series-balanced); }
.legend { font-size: 0.85em; color: var(--vscode-descriptionForeground); }
.key { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
.log { font-family: var(--vscode-editor-font-family); font-size: 0.85em; padding-left: 20px; max-height: 12em; overflow: auto; }
.log .warning { color: var(--vscode-editorWarning-foreground); }
.log .error { color: var(--vscode-editorError-foreground); }
.paths { font-size: 0.85em; color: var(--vscode-descriptionForeground); word-break: break-all; }`;

/** Runs inside the webview. Self-contained: serialised with toString(). */
export function dashboardScript(): void {
  interface Api {
    postMessage(message: DashboardRequest): void;
  }
  const vscode = (globalThis as unknown as { acquireVsCodeApi(): Api }).acquireVsCodeApi();
  const SVG = 'http://www.w3.org/2000/svg';
  const byId = (id: string) => document.getElementById(id)!;
  const text = (id: string, value: string) => {
    byId(id).textContent = value;
  };
  const duration = (seconds: number) => {
    if (!Number.isFinite(seconds) || seconds < 0) return '–';
    const s = Math.round(seconds);
    return s < 60
      ? `${s}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`
        : `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  };
  const element = (name: string, attributes: Record<string, string | number>) => {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  };

  /** A line chart of per-epoch series; null values (no validation) leave gaps. */
  function chart(
    svg: SVGElement,
    epochs: number[],
    totalEpochs: number,
    series: { cls: string; values: (number | null)[] }[],
    fixedMax?: number,
  ) {
    svg.replaceChildren();
    const left = 34,
      right = 312,
      top = 8,
      bottom = 140;
    const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
    const max = fixedMax ?? Math.max(1e-6, ...all) * 1.1;
    // The x axis spans the planned epochs, so the chart does not rescale as epochs arrive.
    const count = Math.max(2, totalEpochs, ...epochs);
    const x = (epoch: number) => left + ((epoch - 1) / (count - 1)) * (right - left);
    const y = (value: number) => bottom - (Math.max(0, Math.min(value, max)) / max) * (bottom - top);
    svg.append(
      element('line', { class: 'axis', x1: left, y1: bottom, x2: right, y2: bottom }),
      element('line', { class: 'axis', x1: left, y1: top, x2: left, y2: bottom }),
    );
    for (const fraction of [0, 0.5, 1]) {
      const label = element('text', { x: 2, y: y(max * fraction) + 3 });
      label.textContent = (max * fraction).toFixed(max * fraction >= 10 ? 0 : 2);
      svg.append(label);
    }
    for (let epoch = 1; epoch <= count; epoch += Math.max(1, Math.ceil(count / 10))) {
      const label = element('text', { x: x(epoch) - 3, y: bottom + 12 });
      label.textContent = String(epoch);
      svg.append(label);
    }
    for (const s of series) {
      const points = epochs
        .map((epoch, i) => [epoch, s.values[i]] as const)
        .filter((p): p is readonly [number, number] => p[1] !== null && Number.isFinite(p[1]));
      if (points.length > 1)
        svg.append(
          element('polyline', {
            class: s.cls,
            points: points.map(([e, v]) => `${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
          }),
        );
      for (const [e, v] of points)
        svg.append(element('circle', { class: s.cls, cx: x(e).toFixed(1), cy: y(v).toFixed(1), r: 2.2 }));
    }
  }

  function render(view: TrainingView, active: boolean, line: string) {
    const done = view.status === 'completed' || view.status === 'cancelled' || view.status === 'failed';
    text('title', `Training ResNet-18 — ${view.status}`);
    const banner = byId('structural');
    banner.hidden = !view.labelsAreStructural;
    banner.textContent = view.labelsAreStructural
      ? `These labels (${view.labels}) are what the audit judged structural (folds, splits or batches): this model learns the folder, not the diagnosis. The run is marked as such.`
      : '';
    const p = view.progress;
    text('status', view.error ?? line);
    const progress = byId('progress') as HTMLProgressElement;
    progress.value =
      p && p.epochs > 0 && p.batches > 0
        ? Math.min(1, (p.epoch - 1 + p.batch / p.batches) / p.epochs)
        : done && view.status === 'completed'
          ? 1
          : 0;
    text('epoch', p ? `${p.epoch} / ${p.epochs}` : `0 / ${view.totalEpochs}`);
    text('batch', p ? `${p.batch} / ${p.batches}` : '–');
    text('speed', p ? p.imagesPerSecond.toFixed(1) : '–');
    text('eta', p && !done ? duration(p.etaSeconds) : '–');
    text('loss', p ? p.loss.toFixed(4) : '–');
    text('backend', view.backend ?? '–');
    text('dataset', view.dataset);
    text('labels', view.labels);
    text('runDir', view.runDir ?? '–');
    const epochs = view.history.map((h) => h.epoch);
    chart(byId('lossChart') as unknown as SVGElement, epochs, view.totalEpochs, [
      { cls: 'train', values: view.history.map((h) => h.trainLoss) },
      { cls: 'val', values: view.history.map((h) => h.valLoss) },
    ]);
    chart(
      byId('accuracyChart') as unknown as SVGElement,
      epochs,
      view.totalEpochs,
      [
        { cls: 'train', values: view.history.map((h) => h.trainAccuracy) },
        { cls: 'val', values: view.history.map((h) => h.valAccuracy) },
        { cls: 'balanced', values: view.history.map((h) => h.valBalancedAccuracy) },
      ],
      1,
    );
    const log = byId('logLines');
    log.replaceChildren(
      ...view.log.slice(-12).map((line) => {
        const item = document.createElement('li');
        item.className = line.level;
        item.textContent = line.message;
        return item;
      }),
    );
    (byId('cancel') as HTMLButtonElement).disabled = !active || view.status === 'cancelling';
    byId('results').hidden = !(done && view.runDir && view.history.length > 0);
  }

  byId('cancel').addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
  byId('results').addEventListener('click', () => vscode.postMessage({ type: 'openResults' }));
  byId('log').addEventListener('click', () => vscode.postMessage({ type: 'showLog' }));
  window.addEventListener('message', (event: MessageEvent<DashboardUpdate>) => {
    if (event.data?.type === 'view') render(event.data.view, event.data.active, event.data.line);
  });
  vscode.postMessage({ type: 'ready' });
}

/**
 * The serialised dashboard function. Bundlers that keep function names (esbuild's keepNames, which tsx uses)
 * wrap inner functions in a `__name(fn, "name")` helper defined outside the function: provide a stand-in.
 */
export function pageScript(): string {
  return `const __name = (target) => target;\n(${dashboardScript.toString()})();`;
}
