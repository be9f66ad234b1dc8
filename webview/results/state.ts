/** The view state (gallery filter and image controls) and a minimal store that tells views when it changes. */
import { DEFAULT_COLORMAP, isColormapName } from '../../src/core/explain/colormaps.js';
import type { CellFilter, ViewState } from '../../src/protocol/results.js';

export const DEFAULT_STATE: ViewState = {
  filter: null,
  opacity: 0.6,
  scale: 'image',
  colormap: DEFAULT_COLORMAP,
  sort: 'confidence-desc',
};

/** Accepts state from outside (webview storage, the extension) field by field, so a stale shape cannot break the view. */
export function restoreState(value: unknown): ViewState {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof ViewState, unknown>>;
  const opacity = typeof v.opacity === 'number' && v.opacity >= 0 && v.opacity <= 1 ? v.opacity : DEFAULT_STATE.opacity;
  return {
    filter: isFilter(v.filter) ? v.filter : null,
    opacity,
    scale: v.scale === 'shared' ? 'shared' : 'image',
    colormap: isColormapName(v.colormap) ? v.colormap : DEFAULT_COLORMAP,
    sort: v.sort === 'confidence-asc' ? 'confidence-asc' : 'confidence-desc',
  };
}

function isFilter(value: unknown): value is CellFilter {
  const f = value as CellFilter | null;
  return (
    typeof f === 'object' &&
    f !== null &&
    (f.split === 'val' || f.split === 'test') &&
    Number.isInteger(f.true) &&
    Number.isInteger(f.predicted)
  );
}

export function sameFilter(a: CellFilter | null, b: CellFilter | null): boolean {
  return (
    a === b || (a !== null && b !== null && a.split === b.split && a.true === b.true && a.predicted === b.predicted)
  );
}

export class Store {
  private listeners: ((state: ViewState) => void)[] = [];

  constructor(
    private current: ViewState,
    private readonly save: (state: ViewState) => void,
  ) {}

  get state(): ViewState {
    return this.current;
  }

  update(patch: Partial<ViewState>): void {
    this.current = { ...this.current, ...patch };
    this.save(this.current);
    for (const listener of this.listeners) listener(this.current);
  }

  subscribe(listener: (state: ViewState) => void): void {
    this.listeners.push(listener);
  }
}
