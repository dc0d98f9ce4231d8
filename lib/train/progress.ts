// Progress output for long runs: a single self-rewriting line on a terminal, plain periodic
// lines otherwise (logs, CI), nothing when quiet.

export type ProgressMode = 'bar' | 'lines' | 'none';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec)) return '?';
  return perSec >= 100 ? Math.round(perSec).toLocaleString('en-US') : perSec.toPrecision(3);
}

export class Progress {
  private epochStart = 0;
  private lastDraw = 0;
  private drawn = false;
  private epochLabel = '';
  private total = 0;

  constructor(
    readonly mode: ProgressMode,
    private readonly stream: ProgressStream = process.stderr,
    /** Seconds between plain lines. */
    private readonly lineInterval = 10,
  ) {}

  static auto(quiet: boolean, progress: boolean | 'bar' | 'lines' | undefined, stream: ProgressStream = process.stderr): Progress {
    if (quiet || progress === false) return new Progress('none', stream);
    if (progress === 'bar' || progress === 'lines') return new Progress(progress, stream);
    return new Progress(stream.isTTY ? 'bar' : 'lines', stream);
  }

  startEpoch(epoch: number, epochs: number, totalSamples: number): void {
    this.epochLabel = `epoch ${epoch}/${epochs}`;
    this.total = totalSamples;
    this.epochStart = performance.now();
    this.lastDraw = this.epochStart;
    this.drawn = false;
  }

  /** Called after every step; draws at most 10 times a second (bar) or every lineInterval s (lines). */
  update(samples: number, loss: number): void {
    if (this.mode === 'none') return;
    const now = performance.now();
    const interval = this.mode === 'bar' ? 100 : this.lineInterval * 1000;
    if (now - this.lastDraw < interval && samples < this.total) return;
    this.lastDraw = now;
    const elapsed = (now - this.epochStart) / 1000;
    const rate = samples / Math.max(elapsed, 1e-9);
    const eta = (this.total - samples) / rate;
    const frac = this.total > 0 ? Math.min(1, samples / this.total) : 1;
    const stats = `loss ${loss.toFixed(4)}  ${formatRate(rate)} samples/s  ETA ${formatDuration(eta)}`;
    if (this.mode === 'bar') {
      const width = 24;
      const filled = Math.round(frac * width);
      let line = `${this.epochLabel} [${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${stats}`;
      const cols = this.stream.columns;
      if (cols && line.length > cols - 1) line = line.slice(0, cols - 1);
      this.stream.write(`\r\x1b[K${line}`);
      this.drawn = true;
    } else if (samples < this.total) {
      this.stream.write(`${this.epochLabel}: ${samples}/${this.total} samples (${Math.floor(frac * 100)}%)  ${stats}\n`);
    }
  }

  /** The epoch's summary line (replaces the bar). */
  endEpoch(summary: string): void {
    if (this.mode === 'none') return;
    if (this.mode === 'bar' && this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(`${this.epochLabel}  ${summary}\n`);
  }

  message(text: string): void {
    if (this.mode === 'none') return;
    if (this.mode === 'bar' && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
    this.stream.write(text + '\n');
  }
}
