/**
 * The extension host's event-loop lag while something runs: the figure that says whether the window stayed
 * responsive. Logged for each background audit (the end-to-end suite reads and prints it).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LagFigures {
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  seconds: number;
}

export async function measureLag<T>(run: () => Promise<T>): Promise<{ result: T; lag: LagFigures }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  const started = Date.now();
  histogram.enable();
  try {
    const result = await run();
    return { result, lag: figures(histogram, started) };
  } catch (error) {
    (error as Error & { lag?: LagFigures }).lag = figures(histogram, started);
    throw error;
  } finally {
    histogram.disable();
  }
}

function figures(histogram: ReturnType<typeof monitorEventLoopDelay>, started: number): LagFigures {
  // The histogram counts the timer's own resolution as delay: subtract it.
  const ms = (ns: number) => (histogram.count === 0 ? 0 : Math.max(0, ns / 1e6 - 10));
  return {
    maxMs: ms(histogram.max),
    p99Ms: ms(histogram.percentile(99)),
    meanMs: ms(histogram.mean),
    seconds: (Date.now() - started) / 1000,
  };
}

export function describeLag(lag: LagFigures): string {
  return `max ${lag.maxMs.toFixed(0)} ms, p99 ${lag.p99Ms.toFixed(0)} ms, mean ${lag.meanMs.toFixed(1)} ms over ${lag.seconds.toFixed(1)} s`;
}
